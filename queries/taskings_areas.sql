-- Areas a tasking's threat may name: every district and beat the snapshot knows, from the areas table
-- and from the incidents themselves (a warehouse without boundaries, e.g. a plain ingest, still has them).
-- One row per (area_level, area_id): level ('district' or 'beat'), id, display name, parent district,
-- a label for pickers ("District 1 — Harbour", "Beat 1A — Harbour 1A (district 1)") and incidents.
-- Incidents per area, and a beat's commonest district, from the snapshot's summaries (ilp/summaries.sql).
WITH beat_districts AS (
    SELECT beat, district, sum(incidents) AS incidents
    FROM summary.weeks WHERE beat IS NOT NULL GROUP BY beat, district
),
from_incidents AS (
    SELECT 'district' AS area_level, district AS area_id, NULL::VARCHAR AS district, incidents
    FROM summary.districts
    UNION ALL
    SELECT 'beat', beat, arg_max(district, incidents) FILTER (WHERE district IS NOT NULL), sum(incidents)::BIGINT
    FROM beat_districts GROUP BY beat
),
known AS (
    SELECT level AS area_level, area_id, name, CASE WHEN parent_level = 'district' THEN parent_id END AS district
    FROM areas WHERE level IN ('district', 'beat')
)
SELECT area_level,
       area_id,
       coalesce(k.name, area_id) AS name,
       coalesce(k.district, f.district) AS district,
       CASE area_level WHEN 'district' THEN 'District ' ELSE 'Beat ' END || area_id
           || CASE WHEN k.name IS NOT NULL AND k.name <> area_id THEN ' — ' || k.name ELSE '' END
           || CASE WHEN area_level = 'beat' AND coalesce(k.district, f.district) IS NOT NULL
                   THEN ' (district ' || coalesce(k.district, f.district) || ')' ELSE '' END AS label,
       coalesce(f.incidents, 0) AS incidents
FROM known k
FULL OUTER JOIN from_incidents f USING (area_level, area_id)
ORDER BY area_level = 'beat', area_id;
