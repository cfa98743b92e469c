"""Append-only schema migrations for the SQLite trace store (PostgreSQL's are in `trace.pg_schema`).
Never edit one that shipped; add the next."""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "m001_traces",
        """
        CREATE TABLE traces (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            endpoint TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            backend_model TEXT,
            messages TEXT NOT NULL,
            params TEXT NOT NULL,
            stream INTEGER NOT NULL DEFAULT 0,
            output TEXT,
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            logprob_count INTEGER,
            logprob_mean REAL,
            logprob_min REAL,
            ttft_ms REAL,
            generation_ms REAL,
            latency_ms REAL,
            http_status INTEGER NOT NULL,
            error_type TEXT,
            error_message TEXT
        );
        CREATE INDEX traces_created_at ON traces (created_at);
        CREATE INDEX traces_model_created_at ON traces (model, created_at);
        """,
    ),
    (
        "m002_routing",
        """
        ALTER TABLE traces ADD COLUMN contract TEXT;
        ALTER TABLE traces ADD COLUMN input TEXT;
        ALTER TABLE traces ADD COLUMN rung INTEGER;
        ALTER TABLE traces ADD COLUMN escalation_reason TEXT;
        ALTER TABLE traces ADD COLUMN confidence REAL;
        ALTER TABLE traces ADD COLUMN cost REAL;
        ALTER TABLE traces ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';
        CREATE INDEX traces_contract_created_at ON traces (contract, created_at);
        """,
    ),
    (
        "m003_labels",
        """
        CREATE TABLE labels (
            trace_id TEXT PRIMARY KEY REFERENCES traces (id),
            reference TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    ),
    (
        "m004_spend_carryover",
        """
        CREATE TABLE spend_carryover (
            contract TEXT PRIMARY KEY,
            cost REAL NOT NULL
        );
        """,
    ),
    (
        "m005_tenants",
        """
        ALTER TABLE traces ADD COLUMN tenant TEXT;
        CREATE INDEX traces_tenant_created_at ON traces (tenant, created_at);
        CREATE TABLE tenant_spend (
            tenant TEXT PRIMARY KEY,
            cost REAL NOT NULL,
            requests INTEGER NOT NULL
        );
        """,
    ),
    (
        "m006_responses",
        """
        CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            tenant TEXT,
            items TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX responses_created_at ON responses (created_at);
        """,
    ),
    (
        "m007_workflow_runs",
        """
        ALTER TABLE traces ADD COLUMN run_id TEXT;
        ALTER TABLE traces ADD COLUMN step TEXT;
        CREATE INDEX traces_run_id ON traces (run_id);
        """,
    ),
    (
        # The dashboard's aggregates in SQL (see Trace.derived), filled for the traces already stored. The
        # migrator splits on semicolons, hence char(59) for the one in the reason's expression.
        "m008_dashboard",
        """
        ALTER TABLE traces ADD COLUMN answered_local INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE traces ADD COLUMN top_cost REAL NOT NULL DEFAULT 0;
        ALTER TABLE traces ADD COLUMN top_answers INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE traces ADD COLUMN reason TEXT;
        UPDATE traces SET
            reason = CASE WHEN escalation_reason IS NULL OR escalation_reason = '' THEN NULL
                          WHEN instr(escalation_reason, char(59)) > 0
                          THEN substr(escalation_reason, 1, instr(escalation_reason, char(59)) - 1)
                          ELSE escalation_reason END,
            top_cost = (SELECT COALESCE(SUM(COALESCE(json_extract(value, '$.cost'), 0)), 0)
                        FROM json_each(traces.attempts)
                        WHERE json_extract(value, '$.status') IN ('accepted', 'shadow')
                          AND json_extract(value, '$.location') = 'remote'),
            top_answers = (SELECT COUNT(*) FROM json_each(traces.attempts)
                           WHERE json_extract(value, '$.status') IN ('accepted', 'shadow')
                             AND json_extract(value, '$.location') = 'remote'),
            answered_local = CASE WHEN status = 'ok' AND rung IS NOT NULL AND EXISTS (
                SELECT 1 FROM json_each(traces.attempts)
                WHERE json_extract(value, '$.status') = 'accepted' AND json_extract(value, '$.location') = 'local'
                  AND json_extract(value, '$.rung') = traces.rung) THEN 1 ELSE 0 END
        WHERE attempts IS NOT NULL AND attempts != '[]' OR escalation_reason IS NOT NULL;
        CREATE INDEX traces_status_created_at ON traces (status, created_at);
        CREATE INDEX traces_reason_created_at ON traces (reason, created_at);
        CREATE INDEX traces_backend_model_created_at ON traces (backend_model, created_at);
        """,
    ),
    (
        # Hourly rollups for the dashboard (trace.rollup); the store fills them from the stored traces
        # right after this migration.
        "m009_rollup",
        """
        CREATE TABLE trace_rollup (
            hour INTEGER NOT NULL,
            contract TEXT NOT NULL,
            requests INTEGER NOT NULL,
            routed INTEGER NOT NULL,
            local INTEGER NOT NULL,
            cost REAL NOT NULL,
            top_cost REAL NOT NULL,
            top_answers INTEGER NOT NULL,
            priced_cost REAL NOT NULL,
            priced_n INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            rejected INTEGER NOT NULL,
            latency_n INTEGER NOT NULL,
            latency_sum REAL NOT NULL,
            hist TEXT NOT NULL,
            rungs TEXT NOT NULL,
            reasons TEXT NOT NULL,
            PRIMARY KEY (hour, contract)
        );
        """,
    ),
    (
        # The budget ledger (trace.store): spend per (scope, name, window) in nano-dollars, reserved before each
        # priced call. Seeded with what was spent before: contract and tenant totals (purged traces included,
        # from spend_carryover and tenant_spend), and the day and month windows from the stored traces.
        "m010_budget_ledger",
        """
        CREATE TABLE budget_spend (
            scope TEXT NOT NULL,
            name TEXT NOT NULL,
            win TEXT NOT NULL,
            spent_nano INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, name, win)
        );
        INSERT INTO budget_spend (scope, name, win, spent_nano)
            SELECT 'contract', contract, 'total', CAST(ROUND(SUM(c) * 1e9) AS INTEGER) FROM (
                SELECT contract, COALESCE(cost, 0) AS c FROM traces WHERE contract IS NOT NULL
                UNION ALL SELECT contract, cost FROM spend_carryover) GROUP BY contract;
        INSERT INTO budget_spend (scope, name, win, spent_nano)
            SELECT 'tenant', tenant, 'total', CAST(ROUND(cost * 1e9) AS INTEGER) FROM tenant_spend;
        INSERT INTO budget_spend (scope, name, win, spent_nano)
            SELECT scope, name, win, CAST(ROUND(SUM(c) * 1e9) AS INTEGER) FROM (
                SELECT 'contract' AS scope, contract AS name, 'day:' || strftime('%Y-%m-%d', created_at, 'unixepoch')
                       AS win, COALESCE(cost, 0) AS c FROM traces WHERE contract IS NOT NULL AND cost > 0
                UNION ALL
                SELECT 'contract', contract, 'month:' || strftime('%Y-%m', created_at, 'unixepoch'), COALESCE(cost, 0)
                FROM traces WHERE contract IS NOT NULL AND cost > 0
                UNION ALL
                SELECT 'tenant', tenant, 'day:' || strftime('%Y-%m-%d', created_at, 'unixepoch'), COALESCE(cost, 0)
                FROM traces WHERE tenant IS NOT NULL AND cost > 0
                UNION ALL
                SELECT 'tenant', tenant, 'month:' || strftime('%Y-%m', created_at, 'unixepoch'), COALESCE(cost, 0)
                FROM traces WHERE tenant IS NOT NULL AND cost > 0) GROUP BY scope, name, win;
        """,
    ),
]
