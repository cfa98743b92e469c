"""Append-only schema migrations for the SQLite trace store. Never edit one that shipped; add the next."""

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
]
