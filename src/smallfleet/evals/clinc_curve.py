"""CLINC150 learning curve: what retraining on more escalated traffic buys the classifier specialist.

`distill watch` retrains when enough new references have arrived. This measures what each retrain
would give, on real user requests, without the gateway in between (the live loop is
`smallfleet demo --workload clinc150`): the first N requests of one shuffled stream of the train
splits (in scope and out of scope) carry the SIMULATED teacher's answers (gold intent, wrong
`1 - teacher_accuracy` of the time) as references, exactly what escalations leave in the traces. For
each N:

- 85% train / 15% dev (hash split of the text); the embedding + n-gram classifier (the specialist)
  is fitted on train; its accept rule (class probability threshold) is fitted on dev with the same
  Wilson-bound fit as calibration, at the quality target;
- on the test split (an even sample of `test_limit`, or all 5,500): accuracy of the classifier alone,
  the share the rule accepts (local share), the accuracy of accepted answers, the overall accuracy
  when the rest goes to the teacher, the quality loss against sending everything to the teacher, and
  the cost reduction (the teacher is the only paid rung, each request costing the same).
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

import numpy as np


def _dev(text: str) -> bool:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < 0.15


def run_clinc_curve(sizes: tuple[int, ...] = (1000, 2000, 4000, 8000), test_limit: int | None = 2000,
                    teacher_accuracy: float = 0.97, target: float = 0.95, c: float = 10.0) -> dict[str, Any]:
    from smallfleet.constrain.spec import ChoiceConstraint
    from smallfleet.evals.clinc_loop import ClincTeacher
    from smallfleet.embeddings import Encoder
    from smallfleet.route.calibrate import Sample, evaluate, fit
    from smallfleet.specialists.classifier import EmbeddingClassifier, layout_of
    from smallfleet.workload import clinc150

    data = clinc150.load()
    intents = clinc150.intents(data)
    stream = clinc150.traffic(data, max(sizes))
    tests = clinc150.test_queries(data)
    if test_limit and test_limit < len(tests):
        tests = tests[::math.ceil(len(tests) / test_limit)]
    gold = {q.text: q.intent for split in data.values() for q in split}
    teacher = ClincTeacher(gold, intents, teacher_accuracy)
    layout = layout_of(ChoiceConstraint(tuple(intents)))
    assert layout is not None
    encoder = Encoder()
    started = time.perf_counter()
    stream_x = encoder.encode([q.text for q in stream])
    test_texts = [q.text for q in tests]
    test_x = encoder.encode(test_texts)
    encode_s = time.perf_counter() - started
    teacher_right = np.array([teacher.answer(q.text) == q.intent for q in tests])
    out: dict[str, Any] = {"simulation": f"references are a stand-in teacher's answers ({teacher_accuracy:.0%} "
                                         "right), as escalations would leave them",
                           "test_items": len(tests), "target": target, "encode_seconds": round(encode_s, 1),
                           "all_teacher_accuracy": round(float(teacher_right.mean()), 4), "curve": []}
    for n in sorted(sizes):
        rows = [(q.text, teacher.answer(q.text), i) for i, q in enumerate(stream[:n])]
        train = [r for r in rows if not _dev(r[0])]
        dev = [r for r in rows if _dev(r[0])]
        t0 = time.perf_counter()
        model = EmbeddingClassifier(layout, c=c).fit([r[0] for r in train], stream_x[[r[2] for r in train]],
                                                     [layout.parse(r[1]) or {} for r in train])
        fit_s = time.perf_counter() - t0

        def scored(texts: list[str], x: np.ndarray) -> tuple[list[str], np.ndarray]:
            preds = model.predict(texts, x)
            return ([layout.display(p.values["answer"]) for p in preds],
                    np.array([math.log(max(p.probability["answer"], 1e-12)) for p in preds]))

        dev_answers, dev_lp = scored([r[0] for r in dev], stream_x[[r[2] for r in dev]])
        samples = [Sample(str(i), True, {"mean_logprob": float(lp)}, a == r[1])
                   for i, (r, a, lp) in enumerate(zip(dev, dev_answers, dev_lp, strict=True))]
        rule = fit(samples, target)
        answers, lp = scored(test_texts, test_x)
        right = np.array([a == q.intent for a, q in zip(answers, tests, strict=True)])
        accepted = lp >= rule.threshold if rule.installed and rule.threshold is not None else np.zeros(len(tests), bool)
        overall = np.where(accepted, right, teacher_right)
        point = {"traces": n, "train": len(train), "dev": len(dev), "fit_seconds": round(fit_s, 1),
                 "classifier_accuracy": round(float(right.mean()), 4),
                 "rule": {"min_probability": round(math.exp(rule.threshold), 4)} if rule.installed and
                 rule.threshold is not None else "always escalate",
                 "dev_accepted_agreement": round(evaluate(samples, "mean_logprob", rule.threshold).agreement, 4)
                 if rule.installed and rule.threshold is not None else None,
                 "local_share": round(float(accepted.mean()), 4),
                 "local_answers_accuracy": round(float(right[accepted].mean()), 4) if accepted.any() else None,
                 "overall_accuracy": round(float(overall.mean()), 4),
                 "quality_loss_points": round(100 * float(teacher_right.mean() - overall.mean()), 2),
                 "cost_reduction": round(float(accepted.mean()), 4)}
        out["curve"].append(point)
    return out
