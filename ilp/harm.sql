-- The one definition of harm: DuckDB table macros stored in every warehouse snapshot.
-- ilp/warehouse.py applies this file to every new warehouse (after ilp/schema.sql) and again at the start
-- of every later write, so a snapshot written by older code gains the macros on its next write.
-- Statements are idempotent (CREATE OR REPLACE). Queries compute harm only through these macros;
-- tests/test_harm_definition.py fails on a query that reads harm_weights itself (listings of the weight
-- table excepted) and checks every harm-reporting query against them.
--
-- The rule: an incident's harm is its offence category's weight in the chosen index
-- (harm_index, harm_version), and 0 when
--   * the category is proactive (drug, weapons-possession and vehicle offences: their counts measure
--     police activity, not harm, so the CCHI excludes them), unless include_proactive := true;
--   * the index does not weigh the category.

-- One row per offence category (offence_categories): category, proactive, and harm_weight, the harm one
-- incident of the category carries under the rule above.
CREATE OR REPLACE MACRO category_harm(harm_index, harm_version, include_proactive := false) AS TABLE
SELECT
    c.category,
    c.proactive,
    CASE WHEN c.proactive AND NOT include_proactive THEN 0.0
         ELSE coalesce(h.weight, 0.0) END AS harm_weight
FROM offence_categories c
LEFT JOIN harm_weights h
       ON h.index_name = harm_index AND h.version = harm_version AND h.category = c.category;

-- One row per incident: every column of incidents plus harm, its category's harm_weight from
-- category_harm (0 for a category missing from offence_categories). Callers filter it like incidents;
-- DuckDB pushes their WHERE on incident columns down to the incidents scan.
CREATE OR REPLACE MACRO incident_harm(harm_index, harm_version, include_proactive := false) AS TABLE
SELECT i.*, coalesce(k.harm_weight, 0.0) AS harm  -- noqa: AM04
FROM incidents i
LEFT JOIN category_harm(harm_index, harm_version, include_proactive := include_proactive) AS k
       ON k.category = i.offense_category;
