"""The project's JSON Schema suite: realistic agent payloads, edge cases, and schemas we must refuse.

Written for smallfleet (not taken from a benchmark). Three parts:
- `REALISTIC`: tickets, invoices, orders, API payloads, config files, nested and recursive shapes.
- `EDGE`: one feature at a time ($ref/$defs, recursion, anyOf/oneOf/allOf, enum/const, bounds,
  lengths, patterns, formats, additionalProperties, prefixItems, ...).
- `FAMILIES`: systematic variants (numeric bounds, string lengths, array sizes, formats, enums,
  nesting depth) so every keyword is exercised in several combinations.
- `REFUSED`: schemas using keywords that cannot be enforced; each must be refused with a 400
  naming the keyword (never generated unconstrained).

Every case carries a short task for the model; the runner validates every output with `jsonschema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Schema = dict[str, Any]


@dataclass(frozen=True)
class SchemaCase:
    name: str
    task: str
    schema: Schema
    expect: Literal["valid", "refused"] = "valid"


def obj(props: dict[str, Any], required: list[str] | None = None, extra: bool = False, **kw: Any) -> Schema:
    """An object schema; all properties required unless told otherwise; no extra keys unless `extra`."""
    return {"type": "object", "properties": props, "required": list(props) if required is None else required,
            "additionalProperties": extra, **kw}


S = {"type": "string"}
I = {"type": "integer"}
N = {"type": "number"}
B = {"type": "boolean"}


def s(**kw: Any) -> Schema:
    return {"type": "string", **kw}


def arr(items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "items": items, **kw}


def enum(*values: Any) -> Schema:
    return {"enum": list(values)}


MONEY = {"type": "number", "minimum": 0}
ADDRESS = obj({"street": s(maxLength=60), "city": s(maxLength=40), "postal_code": s(pattern=r"^[0-9]{5}$"),
               "country": s(pattern=r"^[A-Z]{2}$")})

REALISTIC: list[SchemaCase] = [
    SchemaCase("ticket_triage", "Triage this support ticket: 'I was charged twice for my subscription this month.'",
               obj({"category": enum("billing", "technical", "account", "shipping", "other"),
                    "urgency": enum("low", "medium", "high"), "product": s(maxLength=40)})),
    SchemaCase("ticket_full", "Triage: 'The mobile app crashes every time I open settings since the last update.'",
               obj({"category": enum("bug", "feature_request", "question", "billing"),
                    "severity": {"type": "integer", "minimum": 1, "maximum": 4},
                    "summary": s(maxLength=100), "needs_human": B,
                    "tags": arr(s(maxLength=20), maxItems=4)})),
    SchemaCase("ticket_routing", "Route: 'Please reset my password, I am locked out of my account.'",
               obj({"team": enum("identity", "payments", "platform", "support"),
                    "priority": enum("p1", "p2", "p3"), "auto_reply": s(maxLength=160)})),
    SchemaCase("sentiment", "Classify the sentiment of: 'Great service, but delivery was late.'",
               obj({"sentiment": enum("positive", "negative", "mixed", "neutral"),
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1}})),
    SchemaCase("invoice", "Extract the invoice: 'Invoice INV-2041 from Acme Corp, dated 2024-03-05, total 1250.00 EUR.'",
               obj({"invoice_number": s(pattern=r"^INV-[0-9]{3,6}$"), "vendor": s(maxLength=60),
                    "date": s(format="date"), "total": MONEY, "currency": enum("EUR", "USD", "GBP")})),
    SchemaCase("invoice_lines", "Extract line items: '2 x widget at 3.50, 1 x gadget at 12.00'",
               obj({"lines": arr(obj({"description": s(maxLength=40), "quantity": {"type": "integer", "minimum": 1},
                                      "unit_price": MONEY}), minItems=1, maxItems=5),
                    "subtotal": MONEY})),
    SchemaCase("receipt", "Parse the receipt: 'Cafe Luna, 2 coffees 7.00, tip 1.00, paid by card'",
               obj({"merchant": s(maxLength=40), "total": MONEY, "tip": MONEY,
                    "payment_method": enum("cash", "card", "mobile")})),
    SchemaCase("purchase_order", "Create a purchase order for 10 laptops for the Berlin office.",
               obj({"po_number": s(pattern=r"^PO-[0-9]{4}$"), "items": arr(obj({"sku": s(maxLength=20),
                    "qty": {"type": "integer", "minimum": 1, "maximum": 1000}}), minItems=1, maxItems=3),
                    "ship_to": ADDRESS, "approved": B})),
    SchemaCase("order_status", "Order 5521 shipped yesterday with DHL, tracking DH123456.",
               obj({"order_id": I, "status": enum("pending", "shipped", "delivered", "cancelled"),
                    "carrier": enum("DHL", "UPS", "FedEx", "USPS"), "tracking": s(maxLength=30)})),
    SchemaCase("refund_request", "Customer wants a refund of 49.99 for order 8812 because the item arrived broken.",
               obj({"order_id": I, "amount": MONEY, "reason": enum("damaged", "wrong_item", "late", "other"),
                    "approve": B})),
    SchemaCase("shipping_address", "Normalise: 'ship to 12 Rue de Rivoli, 75001 Paris, France'", ADDRESS),
    SchemaCase("contact_card", "Make a contact card for Jane Doe, jane@example.com, works at Globex.",
               obj({"name": s(maxLength=50), "email": s(format="email"), "company": s(maxLength=50),
                    "phone": {"type": ["string", "null"], "maxLength": 20}})),
    SchemaCase("user_profile", "Create a user profile for a 34-year-old developer named Sam.",
               obj({"id": s(format="uuid"), "name": s(maxLength=40), "age": {"type": "integer", "minimum": 0,
                    "maximum": 130}, "roles": arr(enum("admin", "dev", "viewer"), minItems=1, maxItems=3)})),
    SchemaCase("calendar_event", "Schedule a 30 minute team sync next Monday at 10:00 UTC.",
               obj({"title": s(maxLength=60), "start": s(format="date-time"),
                    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                    "attendees": arr(s(format="email"), maxItems=5)})),
    SchemaCase("meeting_notes", "Summarise: 'We agreed to ship v2 on Friday; Ana owns QA; Bo writes docs.'",
               obj({"decisions": arr(s(maxLength=80), maxItems=3),
                    "action_items": arr(obj({"owner": s(maxLength=20), "task": s(maxLength=60)}), maxItems=4)})),
    SchemaCase("http_request", "Describe an HTTP request that fetches user 42 from the users API.",
               obj({"method": enum("GET", "POST", "PUT", "DELETE", "PATCH"), "path": s(pattern=r"^/[a-z0-9/_-]*$"),
                    "headers": {"type": "object", "additionalProperties": s(maxLength=60), "maxProperties": 3},
                    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 60}})),
    SchemaCase("api_error", "Write the API error for a missing 'email' field.",
               obj({"error": obj({"code": s(pattern=r"^[A-Z_]{3,30}$"), "message": s(maxLength=100),
                                  "field": {"type": ["string", "null"]}})})),
    SchemaCase("webhook", "Describe a webhook event for a completed payment of 20 USD.",
               obj({"event": enum("payment.completed", "payment.failed", "refund.created"),
                    "id": s(format="uuid"), "created_at": s(format="date-time"),
                    "data": obj({"amount_cents": {"type": "integer", "minimum": 0}, "currency": s(pattern=r"^[A-Z]{3}$")})})),
    SchemaCase("paginated_list", "Return page 2 of a product listing with 2 products.",
               obj({"page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1,
                    "maximum": 100}, "items": arr(obj({"id": I, "name": s(maxLength=30)}), maxItems=3)})),
    SchemaCase("search_query", "Turn 'red running shoes under 80 dollars' into a search query.",
               obj({"keywords": arr(s(maxLength=20), minItems=1, maxItems=4), "max_price": MONEY,
                    "color": {"type": ["string", "null"], "maxLength": 15}, "in_stock_only": B})),
    SchemaCase("sql_intent", "Interpret: 'how many orders did we get last week?'",
               obj({"table": enum("orders", "customers", "products"), "aggregate": enum("count", "sum", "avg"),
                    "period_days": {"type": "integer", "minimum": 1, "maximum": 365}})),
    SchemaCase("app_config", "Write a config for a web service on port 8080 with debug off.",
               obj({"service": s(pattern=r"^[a-z][a-z0-9-]{1,30}$"), "port": {"type": "integer", "minimum": 1,
                    "maximum": 65535}, "debug": B, "log_level": enum("debug", "info", "warning", "error")})),
    SchemaCase("db_config", "Describe a PostgreSQL connection for database 'shop' on localhost.",
               obj({"driver": {"const": "postgresql"}, "host": s(format="hostname"), "port": I,
                    "database": s(pattern=r"^[a-z_]{1,30}$"), "pool": obj({"min": {"type": "integer", "minimum": 0,
                    "maximum": 10}, "max": {"type": "integer", "minimum": 1, "maximum": 50}})})),
    SchemaCase("feature_flags", "List feature flags: dark mode on, beta search off.",
               obj({"flags": arr(obj({"key": s(pattern=r"^[a-z_]{2,30}$"), "enabled": B}), minItems=1, maxItems=5)})),
    SchemaCase("ci_pipeline", "Describe a CI pipeline with test and deploy stages.",
               obj({"stages": arr(obj({"name": enum("build", "test", "deploy", "lint"), "timeout_minutes": {
                    "type": "integer", "minimum": 1, "maximum": 120}}), minItems=1, maxItems=4),
                    "branch": s(maxLength=30)})),
    SchemaCase("k8s_resources", "Set container resources: 2 CPUs and 512Mi memory.",
               obj({"cpu": {"type": "number", "minimum": 0.1, "maximum": 64},
                    "memory": s(pattern=r"^[0-9]{1,5}(Mi|Gi)$"), "replicas": {"type": "integer", "minimum": 1,
                    "maximum": 20}})),
    SchemaCase("cron_job", "A nightly backup job at 2am.",
               obj({"name": s(maxLength=30), "schedule": s(pattern=r"^[0-9*/, -]{9,30}$"), "enabled": B})),
    SchemaCase("log_record", "Turn 'ERROR 2024-05-01T10:00:00Z payment service timeout' into a log record.",
               obj({"level": enum("DEBUG", "INFO", "WARN", "ERROR"), "timestamp": s(format="date-time"),
                    "service": s(maxLength=30), "message": s(maxLength=100)})),
    SchemaCase("metric_alert", "Alert when CPU is above 90 percent for 5 minutes.",
               obj({"metric": enum("cpu", "memory", "disk", "latency"), "threshold": {"type": "number",
                    "minimum": 0, "maximum": 100}, "window_minutes": {"type": "integer", "minimum": 1},
                    "severity": enum("info", "warning", "critical")})),
    SchemaCase("incident", "Record an incident: checkout down for 20 minutes, root cause bad deploy.",
               obj({"title": s(maxLength=60), "duration_minutes": {"type": "integer", "minimum": 0},
                    "impact": enum("none", "minor", "major", "critical"), "root_cause": s(maxLength=80),
                    "follow_ups": arr(s(maxLength=60), maxItems=3)})),
    SchemaCase("product", "Describe a product: a blue ceramic mug, 350ml, price 12.50.",
               obj({"sku": s(pattern=r"^[A-Z]{3}-[0-9]{4}$"), "name": s(maxLength=40), "price": MONEY,
                    "attributes": obj({"color": s(maxLength=15), "capacity_ml": {"type": "integer", "minimum": 1}})})),
    SchemaCase("inventory_adjust", "We counted 40 units of SKU ABC-1234 but the system says 42.",
               obj({"sku": s(pattern=r"^[A-Z]{3}-[0-9]{4}$"), "counted": {"type": "integer", "minimum": 0},
                    "expected": {"type": "integer", "minimum": 0}, "action": enum("adjust", "recount", "ignore")})),
    SchemaCase("bank_transfer", "Send 250 EUR to IBAN DE89370400440532013000 for rent.",
               obj({"amount": {"type": "number", "exclusiveMinimum": 0}, "currency": enum("EUR", "USD"),
                    "iban": s(pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$"), "reference": s(maxLength=35)})),
    SchemaCase("expense", "Expense: taxi to airport 45 USD on 2024-02-10, client project X.",
               obj({"category": enum("travel", "meals", "lodging", "supplies"), "amount": MONEY,
                    "date": s(format="date"), "billable": B, "project": {"type": ["string", "null"]}})),
    SchemaCase("loan_application", "Applicant earns 52000 a year and asks for a 10000 loan over 24 months.",
               obj({"income": MONEY, "amount": MONEY, "term_months": enum(12, 24, 36, 48, 60),
                    "decision": enum("approve", "review", "decline")})),
    SchemaCase("medical_triage", "Patient reports mild headache for two days, no fever.",
               obj({"urgency": enum("routine", "soon", "urgent", "emergency"),
                    "symptoms": arr(s(maxLength=30), minItems=1, maxItems=4), "fever": B})),
    SchemaCase("recipe", "Give a simple recipe for pancakes.",
               obj({"title": s(maxLength=40), "servings": {"type": "integer", "minimum": 1, "maximum": 12},
                    "ingredients": arr(obj({"item": s(maxLength=30), "amount": s(maxLength=15)}), minItems=2,
                    maxItems=6), "steps": arr(s(maxLength=80), minItems=1, maxItems=5)})),
    SchemaCase("book", "Describe the book '1984' by George Orwell.",
               obj({"title": s(maxLength=60), "author": s(maxLength=40), "year": {"type": "integer",
                    "minimum": 1400, "maximum": 2100}, "genres": arr(s(maxLength=20), maxItems=3)})),
    SchemaCase("movie_review", "Review a movie you enjoyed, rating out of 10.",
               obj({"title": s(maxLength=50), "rating": {"type": "integer", "minimum": 1, "maximum": 10},
                    "recommend": B, "one_line": s(maxLength=100)})),
    SchemaCase("weather_report", "Weather in Oslo: 3 degrees, light snow, wind 20 km/h.",
               obj({"city": s(maxLength=30), "temperature_c": {"type": "number", "minimum": -90, "maximum": 60},
                    "conditions": enum("clear", "cloudy", "rain", "snow", "fog"), "wind_kmh": {"type": "number",
                    "minimum": 0}})),
    SchemaCase("flight_booking", "Book a flight from JFK to LHR on 2024-07-01 for 2 adults.",
               obj({"from": s(pattern=r"^[A-Z]{3}$"), "to": s(pattern=r"^[A-Z]{3}$"), "date": s(format="date"),
                    "passengers": {"type": "integer", "minimum": 1, "maximum": 9},
                    "cabin": enum("economy", "premium", "business", "first")})),
    SchemaCase("hotel_search", "Find a hotel in Rome for 3 nights, budget 150 per night.",
               obj({"city": s(maxLength=30), "nights": {"type": "integer", "minimum": 1, "maximum": 30},
                    "max_price_per_night": MONEY, "amenities": arr(enum("wifi", "pool", "parking", "breakfast"),
                    maxItems=4)})),
    SchemaCase("job_posting", "Post a job for a remote senior Python engineer.",
               obj({"title": s(maxLength=60), "remote": B, "level": enum("junior", "mid", "senior", "staff"),
                    "skills": arr(s(maxLength=20), minItems=1, maxItems=5), "salary_range": obj({
                        "min": MONEY, "max": MONEY})})),
    SchemaCase("resume_parse", "Parse: 'Maria Lopez, 6 years at Initech as data analyst, skills SQL and Python.'",
               obj({"name": s(maxLength=40), "years_experience": {"type": "integer", "minimum": 0, "maximum": 60},
                    "last_employer": s(maxLength=40), "skills": arr(s(maxLength=20), maxItems=5)})),
    SchemaCase("survey_answer", "Record a survey answer: very satisfied, would recommend, comment 'fast'.",
               obj({"satisfaction": {"type": "integer", "minimum": 1, "maximum": 5}, "recommend": B,
                    "comment": {"anyOf": [s(maxLength=100), {"type": "null"}]}})),
    SchemaCase("translation", "Translate 'good morning' to French and Spanish.",
               obj({"source": s(maxLength=40), "translations": obj({"fr": s(maxLength=40), "es": s(maxLength=40)})})),
    SchemaCase("entity_extraction", "Extract entities: 'Tim Cook announced in Cupertino that Apple will ...'",
               obj({"people": arr(s(maxLength=30), maxItems=3), "places": arr(s(maxLength=30), maxItems=3),
                    "organizations": arr(s(maxLength=30), maxItems=3)})),
    SchemaCase("intent_slots", "Parse: 'set an alarm for 7:30 tomorrow'",
               obj({"intent": enum("set_alarm", "play_music", "get_weather", "send_message"),
                    "slots": obj({"time": s(pattern=r"^[0-2][0-9]:[0-5][0-9]$"), "day": enum("today", "tomorrow")})})),
    SchemaCase("moderation", "Moderate: 'You are all idiots and I will find you.'",
               obj({"flagged": B, "categories": arr(enum("harassment", "threat", "hate", "spam", "none"),
                    minItems=1, maxItems=3), "score": {"type": "number", "minimum": 0, "maximum": 1}})),
    SchemaCase("qa_answer", "Answer with a cited fact: what is the boiling point of water at sea level?",
               obj({"answer": s(maxLength=80), "value": N, "unit": enum("C", "F", "K"),
                    "confidence": enum("low", "medium", "high")})),
    SchemaCase("git_commit", "Write commit metadata for fixing a null pointer in the login handler.",
               obj({"type": enum("fix", "feat", "docs", "refactor", "test", "chore"),
                    "scope": s(pattern=r"^[a-z-]{1,20}$"), "subject": s(maxLength=72), "breaking": B})),
    SchemaCase("code_review", "Review: a function that reads a file without closing it.",
               obj({"verdict": enum("approve", "request_changes", "comment"),
                    "issues": arr(obj({"severity": enum("low", "medium", "high"), "note": s(maxLength=80)}),
                                  maxItems=3)})),
    SchemaCase("geo_point", "Give the coordinates of the Eiffel Tower.",
               obj({"lat": {"type": "number", "minimum": -90, "maximum": 90},
                    "lon": {"type": "number", "minimum": -180, "maximum": 180}, "name": s(maxLength=40)})),
    SchemaCase("rgb_color", "Describe the color teal as RGB.",
               obj({"r": {"type": "integer", "minimum": 0, "maximum": 255}, "g": {"type": "integer", "minimum": 0,
                    "maximum": 255}, "b": {"type": "integer", "minimum": 0, "maximum": 255}, "name": s(maxLength=20)})),
    SchemaCase("org_chart", "Describe a small team: a manager with two engineers.",
               {"$defs": {"person": obj({"name": s(maxLength=30), "title": s(maxLength=30),
                                         "reports": arr({"$ref": "#/$defs/person"}, maxItems=2)})},
                "$ref": "#/$defs/person"}),
    SchemaCase("file_tree", "Describe a project folder with a src folder holding main.py.",
               {"$defs": {"node": obj({"name": s(maxLength=30), "kind": enum("file", "dir"),
                                       "children": arr({"$ref": "#/$defs/node"}, maxItems=3)}, required=["name",
                                                                                                        "kind"])},
                "$ref": "#/$defs/node"}),
    SchemaCase("comment_thread", "A comment 'nice work' with one reply 'thanks'.",
               {"$defs": {"comment": obj({"author": s(maxLength=20), "text": s(maxLength=60),
                                          "replies": arr({"$ref": "#/$defs/comment"}, maxItems=2)})},
                "$ref": "#/$defs/comment"}),
    SchemaCase("boolean_expression", "Express: age > 18 and country is FR.",
               {"$defs": {"expr": {"anyOf": [
                   obj({"op": enum("and", "or"), "args": arr({"$ref": "#/$defs/expr"}, minItems=2, maxItems=2)}),
                   obj({"field": enum("age", "country"), "cmp": enum("eq", "gt", "lt"),
                        "value": {"type": ["string", "integer"]}})]}},
                "$ref": "#/$defs/expr"}),
    SchemaCase("payment_method", "The customer pays by card ending 4242.",
               obj({"method": {"oneOf": [obj({"type": {"const": "card"}, "last4": s(pattern=r"^[0-9]{4}$")}),
                                         obj({"type": {"const": "bank"}, "iban": s(maxLength=34)}),
                                         obj({"type": {"const": "cash"}})]}})),
    SchemaCase("notification", "Notify the user by email that their export is ready.",
               obj({"channel": enum("email", "sms", "push"), "template": s(pattern=r"^[a-z_]{3,30}$"),
                    "variables": {"type": "object", "additionalProperties": s(maxLength=40), "maxProperties": 3}})),
    SchemaCase("tax_calc", "Compute 20 percent VAT on 100.",
               obj({"net": MONEY, "rate": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.01},
                    "vat": MONEY, "gross": MONEY})),
    SchemaCase("subscription_change", "Upgrade customer 77 from basic to pro, effective 2024-09-01.",
               obj({"customer_id": I, "from_plan": enum("free", "basic", "pro", "enterprise"),
                    "to_plan": enum("free", "basic", "pro", "enterprise"), "effective": s(format="date")})),
    SchemaCase("chargeback", "Bank disputes a 30.00 charge from 2024-01-15 as fraud.",
               obj({"amount": MONEY, "charge_date": s(format="date"), "reason": enum("fraud", "not_received",
                    "duplicate", "other"), "evidence_needed": arr(s(maxLength=40), maxItems=3)})),
    SchemaCase("warehouse_pick", "Pick 3 units of SKU KIT-0042 from aisle 7, shelf B.",
               obj({"sku": s(pattern=r"^[A-Z]{3}-[0-9]{4}$"), "qty": {"type": "integer", "minimum": 1},
                    "location": obj({"aisle": {"type": "integer", "minimum": 1, "maximum": 99},
                                     "shelf": s(pattern=r"^[A-F]$")})})),
    SchemaCase("shipment_manifest", "A shipment of 2 parcels to Lyon, total weight 12.5 kg.",
               obj({"destination": s(maxLength=40), "parcels": arr(obj({"weight_kg": {"type": "number",
                    "exclusiveMinimum": 0, "maximum": 70}, "fragile": B}), minItems=1, maxItems=4),
                    "total_weight_kg": {"type": "number", "minimum": 0}})),
    SchemaCase("access_request", "Alice needs read access to the finance bucket for 7 days.",
               obj({"user": s(maxLength=30), "resource": s(maxLength=40), "permission": enum("read", "write",
                    "admin"), "days": {"type": "integer", "minimum": 1, "maximum": 90}})),
    SchemaCase("password_policy", "A password policy: at least 12 characters, rotate every 90 days.",
               obj({"min_length": {"type": "integer", "minimum": 8, "maximum": 128}, "require_symbols": B,
                    "rotation_days": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}})),
    SchemaCase("lead_scoring", "Score a lead: CTO at a 200-person fintech who asked for a demo.",
               obj({"score": {"type": "integer", "minimum": 0, "maximum": 100}, "stage": enum("cold", "warm", "hot"),
                    "company_size": enum("1-10", "11-50", "51-200", "201-1000", "1000+")})),
    SchemaCase("appointment", "Dentist appointment for Tom on 2024-11-03 at 14:30.",
               obj({"patient": s(maxLength=30), "date": s(format="date"), "time": s(pattern=r"^[0-2][0-9]:[0-5][0-9]$"),
                    "kind": enum("checkup", "cleaning", "filling", "emergency")})),
    SchemaCase("ab_test", "An A/B test on the checkout button colour with 50/50 split.",
               obj({"name": s(pattern=r"^[a-z0-9_]{3,40}$"), "variants": arr(obj({"key": s(maxLength=10),
                    "weight": {"type": "integer", "minimum": 0, "maximum": 100}}), minItems=2, maxItems=3),
                    "metric": enum("conversion", "revenue", "clicks")})),
    SchemaCase("backup_policy", "Back up the database daily, keep 14 copies, encrypt them.",
               obj({"frequency": enum("hourly", "daily", "weekly"), "retention": {"type": "integer", "minimum": 1,
                    "maximum": 365}, "encrypted": B, "targets": arr(enum("db", "files", "config"), minItems=1,
                    maxItems=3)})),
]


EDGE: list[SchemaCase] = [
    SchemaCase("bare_string", "Name a fruit.", S),
    SchemaCase("bare_integer", "How many legs does a spider have?", I),
    SchemaCase("bare_number", "What is pi to two decimals?", N),
    SchemaCase("bare_boolean", "Is water wet?", B),
    SchemaCase("bare_null", "Answer with null.", {"type": "null"}),
    SchemaCase("type_union", "Give a value that is a number or a string.", {"type": ["number", "string"]}),
    SchemaCase("const_object", "Confirm.", obj({"ok": {"const": True}, "version": {"const": 2}})),
    SchemaCase("enum_mixed", "Pick one.", {"enum": ["a", 1, None, True]}),
    SchemaCase("empty_object", "Return an empty object.", obj({})),
    SchemaCase("open_object", "Describe a cat with any fields.", {"type": "object"}),
    SchemaCase("optional_fields", "A person with optional nickname.",
               obj({"name": s(maxLength=20), "nickname": s(maxLength=20)}, required=["name"])),
    SchemaCase("additional_typed", "A map of city to population.",
               {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "maxProperties": 3}),
    SchemaCase("pattern_properties", "Environment variables.",
               {"type": "object", "patternProperties": {"^[A-Z_]{2,20}$": s(maxLength=30)},
                "additionalProperties": False, "maxProperties": 3}),
    SchemaCase("min_properties", "Give at least one setting.",
               {"type": "object", "additionalProperties": B, "minProperties": 1, "maxProperties": 3}),
    SchemaCase("prefix_items", "A point as [x, y, label].",
               {"type": "array", "prefixItems": [N, N, s(maxLength=10)], "items": False}),
    SchemaCase("array_exact", "Exactly three colours.", arr(s(maxLength=10), minItems=3, maxItems=3)),
    SchemaCase("array_empty_ok", "List your complaints (may be none).", arr(s(maxLength=30), maxItems=2)),
    SchemaCase("nested_arrays", "A 2x2 matrix.", arr(arr(I, minItems=2, maxItems=2), minItems=2, maxItems=2)),
    SchemaCase("string_lengths", "A short code.", s(minLength=4, maxLength=6)),
    SchemaCase("string_pattern", "A hex colour.", s(pattern=r"^#[0-9a-f]{6}$")),
    SchemaCase("pattern_unanchored", "Something containing 'id'.", s(pattern="id", maxLength=20)),
    SchemaCase("integer_bounds", "A dice roll.", {"type": "integer", "minimum": 1, "maximum": 6}),
    SchemaCase("integer_exclusive", "A positive integer below 10.",
               {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10}),
    SchemaCase("negative_range", "A winter temperature.", {"type": "integer", "minimum": -40, "maximum": -1}),
    SchemaCase("number_multiple", "A price in quarters.", {"type": "number", "multipleOf": 0.25, "minimum": 0,
                                                           "maximum": 100}),
    SchemaCase("integer_multiple", "An even number up to 100.", {"type": "integer", "multipleOf": 2, "minimum": 0,
                                                                 "maximum": 100}),
    SchemaCase("format_date", "Today's date.", s(format="date")),
    SchemaCase("format_datetime", "A timestamp.", s(format="date-time")),
    SchemaCase("format_time", "A time of day.", s(format="time")),
    SchemaCase("format_email", "An email address.", s(format="email")),
    SchemaCase("format_uuid", "A UUID.", s(format="uuid")),
    SchemaCase("format_ipv4", "An IPv4 address.", s(format="ipv4")),
    SchemaCase("format_ipv6", "An IPv6 address.", s(format="ipv6")),
    SchemaCase("format_hostname", "A hostname.", s(format="hostname")),
    SchemaCase("format_uri", "A web address.", s(format="uri")),
    SchemaCase("format_duration", "An ISO 8601 duration of 90 minutes.", s(format="duration")),
    SchemaCase("anyof_scalars", "A number or null.", {"anyOf": [N, {"type": "null"}]}),
    SchemaCase("anyof_objects", "A shape: circle or square.",
               {"anyOf": [obj({"kind": {"const": "circle"}, "r": {"type": "number", "minimum": 0}}),
                          obj({"kind": {"const": "square"}, "side": {"type": "number", "minimum": 0}})]}),
    SchemaCase("oneof_disjoint", "A string id or an integer id.", {"oneOf": [s(maxLength=10), I]}),
    SchemaCase("allof_merge", "A named item with a price.",
               {"allOf": [obj({"name": s(maxLength=20)}, extra=True), {"type": "object", "properties": {
                   "price": MONEY}, "required": ["price"]}]}),
    SchemaCase("ref_definitions", "A line item using the old 'definitions' keyword.",
               {"definitions": {"money": MONEY}, "type": "object", "properties": {"amount": {"$ref":
                                                                                              "#/definitions/money"}},
                "required": ["amount"], "additionalProperties": False}),
    SchemaCase("ref_chain", "An amount via two references.",
               {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"type": "integer", "minimum": 0, "maximum": 9}},
                "$ref": "#/$defs/a"}),
    SchemaCase("recursive_list", "A linked list of three numbers.",
               {"$defs": {"node": obj({"value": I, "next": {"anyOf": [{"$ref": "#/$defs/node"},
                                                                      {"type": "null"}]}})},
                "$ref": "#/$defs/node"}),
    SchemaCase("deep_nesting", "A deeply nested config.",
               obj({"a": obj({"b": obj({"c": obj({"d": obj({"e": s(maxLength=10)})})})})})),
    SchemaCase("unicode_enum", "Pick a greeting.", {"enum": ["héllo", "こんにちは", "¡hola!"]}),
    SchemaCase("escaped_keys", "An object with awkward keys.",
               obj({"a b": I, "quote\"key": B, "slash/key": s(maxLength=5)})),
    SchemaCase("annotations_ignored", "A titled value.",
               {"title": "Thing", "description": "a thing", "examples": [{"x": 1}], "$comment": "ok",
                "type": "object", "properties": {"x": {"type": "integer", "default": 0, "deprecated": False}},
                "required": ["x"], "additionalProperties": False}),
    SchemaCase("boolean_subschema_true", "Anything under 'meta'.", obj({"meta": True, "id": I})),
    SchemaCase("nullable_via_type", "A middle name or null.", obj({"middle": {"type": ["string", "null"],
                                                                            "maxLength": 20}})),
    SchemaCase("number_exclusive_float", "A probability strictly between 0 and 1.",
               {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}),
]


def _families() -> list[SchemaCase]:
    """Systematic variants so each keyword is exercised in several combinations."""
    cases: list[SchemaCase] = []
    for lo, hi in [(0, 1), (0, 10), (1, 100), (-5, 5), (100, 999), (1900, 2100), (0, 65535), (-1000, 0)]:
        cases.append(SchemaCase(f"int_range_{lo}_{hi}", f"A whole number from {lo} to {hi}.",
                                obj({"value": {"type": "integer", "minimum": lo, "maximum": hi}})))
    for lo, hi in [(0.0, 1.0), (-1.5, 1.5), (10.0, 20.0), (0.5, 99.5)]:
        cases.append(SchemaCase(f"num_range_{lo}_{hi}", f"A decimal number from {lo} to {hi}.",
                                obj({"value": {"type": "number", "minimum": lo, "maximum": hi}})))
    for lo, hi in [(1, 1), (2, 5), (3, 12), (0, 8), (5, 40), (10, 20)]:
        cases.append(SchemaCase(f"strlen_{lo}_{hi}", f"A word of {lo} to {hi} characters.",
                                obj({"word": s(minLength=lo, maxLength=hi)})))
    for lo, hi in [(0, 0), (1, 1), (1, 3), (2, 4), (0, 5)]:
        cases.append(SchemaCase(f"arrlen_{lo}_{hi}", f"Between {lo} and {hi} animal names.",
                                obj({"animals": arr(s(maxLength=15), minItems=lo, maxItems=hi)})))
    for fmt in ["date", "date-time", "time", "email", "uuid", "ipv4", "ipv6", "hostname", "uri", "duration"]:
        cases.append(SchemaCase(f"field_format_{fmt}", f"An object holding a {fmt} value.",
                                obj({"value": s(format=fmt), "label": s(maxLength=20)})))
    for n in [2, 3, 5, 8, 12]:
        options = [f"option_{i}" for i in range(n)]
        cases.append(SchemaCase(f"enum_{n}", f"Pick one of {n} options.", obj({"pick": enum(*options)})))
    for depth in [1, 2, 3, 4]:
        inner: Schema = obj({"leaf": I})
        for _ in range(depth):
            inner = obj({"child": inner, "name": s(maxLength=10)})
        cases.append(SchemaCase(f"depth_{depth}", f"A nested object {depth} levels deep.", inner))
    for pattern in [r"^[A-Z]{2}-[0-9]{3}$", r"^v[0-9]+\.[0-9]+\.[0-9]+$", r"^[a-z]+(_[a-z]+)*$",
                    r"^\+[0-9]{7,12}$", r"^[0-9]{4}-[0-9]{2}$"]:
        cases.append(SchemaCase(f"pattern_{len(cases)}", f"A code matching {pattern}.", obj({"code": s(pattern=pattern)})))
    for width in [1, 3, 6, 10]:
        props = {f"field_{i}": [S, I, B, N][i % 4] for i in range(width)}
        cases.append(SchemaCase(f"wide_{width}", f"An object with {width} fields.", obj(props)))
    for kind in ["string", "integer", "number", "boolean"]:
        cases.append(SchemaCase(f"array_of_{kind}", f"A list of up to four {kind} values.",
                                arr({"type": kind}, maxItems=4)))
        cases.append(SchemaCase(f"nullable_{kind}", f"A {kind} or null.", obj({"v": {"type": [kind, "null"]}})))
    for branches in [2, 3, 4]:
        kinds = ["alpha", "beta", "gamma", "delta"][:branches]
        cases.append(SchemaCase(f"tagged_union_{branches}", f"One of {branches} tagged variants.",
                                {"anyOf": [obj({"kind": {"const": k}, "value": I}) for k in kinds]}))
    for props in [1, 2, 3]:
        cases.append(SchemaCase(f"map_max_{props}", f"A map with at most {props} counts.",
                                {"type": "object", "additionalProperties": I, "maxProperties": props}))
    for step in [5, 10, 0.5]:
        cases.append(SchemaCase(f"multiple_of_{step}", f"A multiple of {step} up to 100.",
                                obj({"v": {"type": "number", "multipleOf": step, "minimum": 0, "maximum": 100}})))
    for n in [1, 2, 3]:
        cases.append(SchemaCase(f"records_{n}", f"Exactly {n} order records.",
                                arr(obj({"id": I, "total": MONEY, "status": enum("open", "paid")}),
                                    minItems=n, maxItems=n)))
    return cases


FAMILIES: list[SchemaCase] = _families()

REFUSED: list[SchemaCase] = [
    SchemaCase("refuse_unique_items", "Unique tags.", arr(S, uniqueItems=True), "refused"),
    SchemaCase("refuse_contains", "A list containing 3.", arr(I, contains={"const": 3}), "refused"),
    SchemaCase("refuse_not", "Anything but a string.", {"not": S}, "refused"),
    SchemaCase("refuse_if_then", "Conditional.", {"if": S, "then": s(minLength=2)}, "refused"),
    SchemaCase("refuse_dependent_required", "Dependent.", {"type": "object", "dependentRequired": {"a": ["b"]}},
               "refused"),
    SchemaCase("refuse_property_names", "Keys with a pattern.", {"type": "object", "propertyNames": s(pattern="^a")},
               "refused"),
    SchemaCase("refuse_unevaluated", "Closed object.", {"type": "object", "unevaluatedProperties": False}, "refused"),
    SchemaCase("refuse_unknown_format", "A colour.", s(format="color"), "refused"),
    SchemaCase("refuse_remote_ref", "Remote ref.", {"$ref": "https://example.com/schema.json"}, "refused"),
    SchemaCase("refuse_lookaround", "Look-ahead pattern.", s(pattern="^(?=a)[a-z]+$"), "refused"),
    SchemaCase("refuse_nested_unique", "Nested uniqueItems.", obj({"tags": arr(S, uniqueItems=True)}), "refused"),
    SchemaCase("refuse_oneof_overlap", "Overlapping oneOf.", {"oneOf": [S, s(maxLength=3)]}, "refused"),
]

ALL_CASES: list[SchemaCase] = REALISTIC + EDGE + FAMILIES + REFUSED
