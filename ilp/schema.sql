-- ILP warehouse schema (DuckDB): the catalog. One snapshot file holds these small tables; the large ones
-- (incidents, their history and persons, calls, use of force) live in immutable segment files shared by
-- snapshots (ilp/segment_schema.sql, ilp/warehouse.py) and are read through views of the same names.
-- Applied to every new warehouse; statements are idempotent (IF NOT EXISTS).
-- The README's "Warehouse schema" section explains each table; keep the two in step.

-- Key/value facts about this snapshot: version, created_at, kind ('demo' or 'real'),
-- parent snapshot, schema_version, source files of the last write.
CREATE TABLE IF NOT EXISTS snapshot_meta (
    key   VARCHAR PRIMARY KEY,
    value VARCHAR
);

-- The common offence categories every source maps to (data/offence_categories.csv).
-- proactive: counts measure police activity, not harm (excluded from harm by default, as the CCHI does).
-- sensitive: exact locations are never shown to roles without person-level access.
CREATE TABLE IF NOT EXISTS offence_categories (
    category     VARCHAR PRIMARY KEY,
    label        VARCHAR NOT NULL,
    crime_group  VARCHAR NOT NULL,
    violent      BOOLEAN NOT NULL,
    property     BOOLEAN NOT NULL,
    proactive    BOOLEAN NOT NULL,
    sensitive    BOOLEAN NOT NULL,
    description  VARCHAR
);

-- Source offence code -> common category (data/taxonomy/*.csv), with provenance.
CREATE TABLE IF NOT EXISTS offence_taxonomy (
    source               VARCHAR NOT NULL,   -- taxonomy name, e.g. 'chicago_iucr', 'uk_police', 'lapd'
    offense_code         VARCHAR NOT NULL,
    offense_description  VARCHAR,
    category             VARCHAR NOT NULL,
    provenance           VARCHAR,
    PRIMARY KEY (source, offense_code)
);

-- Harm indices and their weights per common category (data/harm/*.csv).
CREATE TABLE IF NOT EXISTS harm_indices (
    index_name   VARCHAR NOT NULL,   -- 'cchi', 'csi', or an agency's own
    version      VARCHAR NOT NULL,
    title        VARCHAR NOT NULL,
    unit         VARCHAR NOT NULL,   -- e.g. 'days of imprisonment'
    provenance   VARCHAR NOT NULL,
    is_default   BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (index_name, version)
);

CREATE TABLE IF NOT EXISTS harm_weights (
    index_name   VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,
    category     VARCHAR NOT NULL,
    weight       DOUBLE NOT NULL,
    provenance   VARCHAR,
    PRIMARY KEY (index_name, version, category)
);

-- Geographic areas at each level (district, beat, ...), with population and GeoJSON geometry.
CREATE TABLE IF NOT EXISTS areas (
    level             VARCHAR NOT NULL,
    area_id           VARCHAR NOT NULL,
    name              VARCHAR,
    parent_level      VARCHAR,
    parent_id         VARCHAR,
    population        INTEGER,
    area_km2          DOUBLE,
    centroid_lat      DOUBLE,
    centroid_lon      DOUBLE,
    geometry_geojson  VARCHAR,            -- a GeoJSON geometry object (Polygon or MultiPolygon), WGS84
    PRIMARY KEY (level, area_id)
);






-- Community survey results (trust, confidence, feeling safe) by area and period.
CREATE TABLE IF NOT EXISTS community_survey (
    source        VARCHAR NOT NULL,
    area_level    VARCHAR NOT NULL,
    area_id       VARCHAR NOT NULL,
    period_start  DATE NOT NULL,
    period_label  VARCHAR NOT NULL,      -- e.g. '2025-Q3'
    measure       VARCHAR NOT NULL,      -- e.g. 'trust_police', 'feel_safe_night'
    value         DOUBLE NOT NULL,       -- share agreeing, 0..1
    respondents   INTEGER NOT NULL
);

-- Every write to the warehouse: one row per ingest / demo build / areas load.
CREATE TABLE IF NOT EXISTS ingest_log (
    ingest_id     INTEGER PRIMARY KEY,
    kind          VARCHAR NOT NULL,      -- 'ingest', 'demo', 'areas', 'harm'
    source        VARCHAR,
    mapping       VARCHAR,
    mapping_sha256 VARCHAR,
    files         JSON,                  -- list of {path, sha256, bytes}
    started_at    TIMESTAMP NOT NULL,
    finished_at   TIMESTAMP,
    rows_read     BIGINT,
    loaded        BIGINT,
    updated       BIGINT,
    unchanged     BIGINT,
    rejected      BIGINT,
    snapshot      VARCHAR                -- the snapshot this write produced
);

-- Rows an ingest rejected, with the reason and the raw row: nothing is lost. Stored once per
-- (file content, line): re-ingesting an unchanged file adds no rows here.
CREATE TABLE IF NOT EXISTS rejects (
    ingest_id    INTEGER NOT NULL,       -- the ingest that first rejected this line of this file content
    file         VARCHAR NOT NULL,
    line_number  BIGINT,                 -- 1-based line in the file (header is line 1) where the record starts
    field        VARCHAR,
    reason       VARCHAR NOT NULL,       -- the rule in words with the row's own value, e.g. the date it had
    raw_row      VARCHAR,                -- the line(s) exactly as in the file
    rule         VARCHAR,                -- the mapping key or CSV problem, e.g. '[validity] min_date = 2001-01-01: date too early'
    value        VARCHAR,                -- the offending value (the date, the repeated id ...), when there is one
    file_sha256  VARCHAR                 -- sha256 of the file's content (ingest_log.files)
);
-- Snapshots written before these columns existed gain them on their next ingest.
ALTER TABLE rejects ADD COLUMN IF NOT EXISTS rule VARCHAR;
ALTER TABLE rejects ADD COLUMN IF NOT EXISTS value VARCHAR;
ALTER TABLE rejects ADD COLUMN IF NOT EXISTS file_sha256 VARCHAR;

-- Implausible data an ingest loaded (e.g. every occurred time in the first hour: hours read as minutes),
-- with the likely cause. Once per (file content, mapping, check).
CREATE TABLE IF NOT EXISTS ingest_warnings (
    ingest_id       INTEGER NOT NULL,
    source          VARCHAR NOT NULL,
    file            VARCHAR NOT NULL,
    file_sha256     VARCHAR NOT NULL,
    mapping_sha256  VARCHAR,
    check_name      VARCHAR NOT NULL,    -- all_midnight, first_hour, minutes_below_24, no_afternoon, first_of_month, day_month_swapped
    rows            BIGINT,              -- the loaded rows of the file the check looked at
    message         VARCHAR NOT NULL     -- what is implausible, the likely cause and the mapping key to change
);

-- Planted ground truth of the synthetic demo city (empty in a real warehouse).
CREATE TABLE IF NOT EXISTS demo_truth (
    kind             VARCHAR NOT NULL,   -- 'emerging_series', 'moving_hotspot', 'intervention', ...
    area_level       VARCHAR,
    area_id          VARCHAR,
    offense_category VARCHAR,
    start_date       DATE,
    end_date         DATE,
    effect_size      DOUBLE,             -- multiplier on the baseline rate (e.g. 3.0, or 0.6 for a 40% cut)
    control_area_id  VARCHAR,            -- for interventions: the comparable untreated area
    details          JSON,
    description      VARCHAR
);

-- The segment files (segments/gNNNNN.duckdb) this snapshot reads its large tables from, oldest first.
CREATE TABLE IF NOT EXISTS segments (
    segment_id   INTEGER PRIMARY KEY,
    file         VARCHAR NOT NULL,       -- relative to the warehouse folder
    rows         BIGINT NOT NULL,        -- rows over all its tables when written
    created_at   TIMESTAMP NOT NULL,
    note         VARCHAR
);

-- Incident versions a later segment replaced (an export that changed a row): hidden from the incidents view.
CREATE TABLE IF NOT EXISTS superseded (
    segment_id   INTEGER NOT NULL,       -- the segment holding the replaced version
    source       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL
);
