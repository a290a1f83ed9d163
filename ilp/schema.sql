-- ILP warehouse schema (DuckDB). One snapshot file holds all of it.
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

-- One row per recorded incident (crime or other notifiable event), current classification.
CREATE TABLE IF NOT EXISTS incidents (
    source               VARCHAR NOT NULL,   -- the mapping/source name, e.g. 'chicago', 'demo'
    source_id            VARCHAR NOT NULL,   -- stable id from the source (or several columns joined by '|')
    occurred_at          TIMESTAMP,          -- local time of occurrence (start of the day/month if less precise)
    occurred_precision   VARCHAR NOT NULL,   -- 'exact', 'day' or 'month'
    reported_at          TIMESTAMP,
    offense_code         VARCHAR,
    offense_description  VARCHAR,
    offense_category     VARCHAR NOT NULL,   -- offence_categories.category, 'unmapped' if unknown
    latitude             DOUBLE,             -- WGS84; NULL when the location is unusable
    longitude            DOUBLE,
    location_status      VARCHAR NOT NULL,   -- 'ok', 'missing', 'zero', 'out_of_bounds', 'unparseable'
    location_text        VARCHAR,            -- block / street as published (already anonymised by the source)
    district             VARCHAR,            -- area id at level 'district'
    beat                 VARCHAR,            -- area id at level 'beat'
    other_areas          MAP(VARCHAR, VARCHAR),  -- further levels, e.g. {'ward': '12', 'community_area': '30'}
    premise_type         VARCHAR,
    domestic             BOOLEAN,
    arrest               BOOLEAN,
    clearance_status     VARCHAR,            -- 'open', 'cleared_arrest', 'cleared_other', 'unknown'
    outcome_description  VARCHAR,
    row_hash             VARCHAR NOT NULL,   -- hash of the normalised row, for unchanged/updated detection
    first_ingest_id      INTEGER,
    last_ingest_id       INTEGER,
    PRIMARY KEY (source, source_id)
);

-- Earlier versions of incidents that a later export changed (reclassification, new outcome).
CREATE TABLE IF NOT EXISTS incident_history (
    source               VARCHAR NOT NULL,
    source_id            VARCHAR NOT NULL,
    superseded_by_ingest INTEGER NOT NULL,
    superseded_at        TIMESTAMP NOT NULL,
    offense_code         VARCHAR,
    offense_description  VARCHAR,
    offense_category     VARCHAR,
    clearance_status     VARCHAR,
    arrest               BOOLEAN,
    previous_row         JSON
);

-- Persons linked to incidents only by a salted pseudonymous key: never names, never addresses.
CREATE TABLE IF NOT EXISTS incident_persons (
    source       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,       -- the incident
    person_key   VARCHAR NOT NULL,       -- sha256(salt || source person id), salt kept outside the warehouse
    role         VARCHAR NOT NULL,       -- 'victim', 'offender', 'suspect'
    age_band     VARCHAR                 -- '<18', '18-24', '25-44', '45-64', '65+', or NULL
);

-- Calls for service (CAD), with the times needed for response-time metrics.
CREATE TABLE IF NOT EXISTS calls_for_service (
    source         VARCHAR NOT NULL,
    call_id        VARCHAR NOT NULL,
    priority       INTEGER,              -- 1 = emergency
    call_type      VARCHAR,
    received_at    TIMESTAMP,
    dispatched_at  TIMESTAMP,
    arrived_at     TIMESTAMP,
    cleared_at     TIMESTAMP,
    district       VARCHAR,
    beat           VARCHAR,
    disposition    VARCHAR,
    PRIMARY KEY (source, call_id)
);

-- Use-of-force events.
CREATE TABLE IF NOT EXISTS use_of_force (
    source          VARCHAR NOT NULL,
    event_id        VARCHAR NOT NULL,
    occurred_at     TIMESTAMP,
    district        VARCHAR,
    beat            VARCHAR,
    force_type      VARCHAR,             -- e.g. 'physical', 'taser', 'baton', 'firearm_pointed', 'firearm_discharged'
    subject_injury  BOOLEAN,
    officer_injury  BOOLEAN,
    PRIMARY KEY (source, event_id)
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
