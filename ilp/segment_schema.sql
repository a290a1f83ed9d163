-- ILP warehouse: the large tables, one set in every segment file (segments/gNNNNN.duckdb) and an empty
-- template set in each snapshot's catalog (schema `template`). Readers see the union of the segments as views
-- named after the tables (ilp/warehouse.py `define_views`); rows are written to the newest segment only.
-- Statements are idempotent; {schema} is replaced by the target schema prefix ('' or 'g00012.').

-- One row per recorded incident (crime or other notifiable event), current classification.
CREATE TABLE IF NOT EXISTS {schema}incidents (
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
CREATE TABLE IF NOT EXISTS {schema}incident_history (
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
CREATE TABLE IF NOT EXISTS {schema}incident_persons (
    source       VARCHAR NOT NULL,
    source_id    VARCHAR NOT NULL,       -- the incident
    person_key   VARCHAR NOT NULL,       -- sha256(salt || source person id), salt kept outside the warehouse
    role         VARCHAR NOT NULL,       -- 'victim', 'offender', 'suspect'
    age_band     VARCHAR                 -- '<18', '18-24', '25-44', '45-64', '65+', or NULL
);

-- Calls for service (CAD), with the times needed for response-time metrics.
CREATE TABLE IF NOT EXISTS {schema}calls_for_service (
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
CREATE TABLE IF NOT EXISTS {schema}use_of_force (
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
