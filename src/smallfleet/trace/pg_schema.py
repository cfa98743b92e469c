"""Append-only schema migrations for the PostgreSQL trace store. Never edit one that shipped; add the next.

The first creates the schema the SQLite store reaches at its m010 (same tables and columns, so
`Trace.from_row` and the dashboard's SQL serve both), with PostgreSQL types: DOUBLE PRECISION for every real
(PostgreSQL's `real` is 4 bytes: epoch seconds would lose minutes), BIGINT for the ledger's nano-dollars.
Ids are compared byte-wise (`COLLATE "C"`) so prefix lookups (`LIKE 'abc%'`) use the primary key's index.
Each migration's text runs as one multi-statement `execute` inside the migrating transaction.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "p001_schema",
        """
        CREATE TABLE traces (
            id TEXT COLLATE "C" PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
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
            logprob_mean DOUBLE PRECISION,
            logprob_min DOUBLE PRECISION,
            ttft_ms DOUBLE PRECISION,
            generation_ms DOUBLE PRECISION,
            latency_ms DOUBLE PRECISION,
            http_status INTEGER NOT NULL,
            error_type TEXT,
            error_message TEXT,
            contract TEXT,
            input TEXT,
            rung INTEGER,
            escalation_reason TEXT,
            confidence DOUBLE PRECISION,
            cost DOUBLE PRECISION,
            attempts TEXT NOT NULL DEFAULT '[]',
            tenant TEXT,
            run_id TEXT COLLATE "C",
            step TEXT,
            answered_local INTEGER NOT NULL DEFAULT 0,
            top_cost DOUBLE PRECISION NOT NULL DEFAULT 0,
            top_answers INTEGER NOT NULL DEFAULT 0,
            reason TEXT
        );
        CREATE INDEX traces_created_at ON traces (created_at);
        CREATE INDEX traces_model_created_at ON traces (model, created_at);
        CREATE INDEX traces_contract_created_at ON traces (contract, created_at);
        CREATE INDEX traces_tenant_created_at ON traces (tenant, created_at);
        CREATE INDEX traces_run_id ON traces (run_id);
        CREATE INDEX traces_status_created_at ON traces (status, created_at);
        CREATE INDEX traces_reason_created_at ON traces (reason, created_at);
        CREATE INDEX traces_backend_model_created_at ON traces (backend_model, created_at);
        CREATE TABLE labels (
            trace_id TEXT COLLATE "C" PRIMARY KEY,  -- no foreign key, as in SQLite: a live check may label first
            reference TEXT NOT NULL,
            source TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE responses (
            id TEXT PRIMARY KEY,
            created_at DOUBLE PRECISION NOT NULL,
            tenant TEXT,
            items TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX responses_created_at ON responses (created_at);
        CREATE TABLE trace_rollup (
            hour INTEGER NOT NULL,
            contract TEXT NOT NULL,
            requests INTEGER NOT NULL,
            routed INTEGER NOT NULL,
            local INTEGER NOT NULL,
            cost DOUBLE PRECISION NOT NULL,
            top_cost DOUBLE PRECISION NOT NULL,
            top_answers INTEGER NOT NULL,
            priced_cost DOUBLE PRECISION NOT NULL,
            priced_n INTEGER NOT NULL,
            errors INTEGER NOT NULL,
            rejected INTEGER NOT NULL,
            latency_n INTEGER NOT NULL,
            latency_sum DOUBLE PRECISION NOT NULL,
            hist TEXT NOT NULL,
            rungs TEXT NOT NULL,
            reasons TEXT NOT NULL,
            PRIMARY KEY (hour, contract)
        );
        CREATE TABLE budget_spend (
            scope TEXT NOT NULL,
            name TEXT NOT NULL,
            win TEXT NOT NULL,
            spent_nano BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (scope, name, win)
        );
        """,
    ),
    (
        # API keys (auth.keys), shared by every replica: digests only, as in keys.db.
        "p002_api_keys",
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            digest TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        );
        """,
    ),
    (
        # Knowledge bases (kb.pg_store), shared by every replica: one set of tables, rows keyed by the knowledge
        # base's name. The lexical index is a stored tsvector (title weighted A, text B) under a GIN index.
        "p003_knowledge_bases",
        """
        CREATE TABLE kb_meta (
            kb TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (kb, key)
        );
        CREATE TABLE kb_documents (
            kb TEXT NOT NULL,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            format TEXT NOT NULL,
            bytes BIGINT NOT NULL,
            chunks INTEGER NOT NULL,
            added_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (kb, path)
        );
        CREATE TABLE kb_chunks (
            id BIGSERIAL PRIMARY KEY,
            kb TEXT NOT NULL,
            document TEXT NOT NULL,
            anchor TEXT NOT NULL,
            part INTEGER NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            embedding BYTEA NOT NULL,
            tsv TSVECTOR GENERATED ALWAYS AS (
                setweight(to_tsvector('english'::regconfig, title), 'A') ||
                setweight(to_tsvector('english'::regconfig, text), 'B')) STORED,
            FOREIGN KEY (kb, document) REFERENCES kb_documents (kb, path) ON DELETE CASCADE
        );
        CREATE INDEX kb_chunks_document ON kb_chunks (kb, document);
        CREATE INDEX kb_chunks_tsv ON kb_chunks USING GIN (tsv);
        """,
    ),
]
