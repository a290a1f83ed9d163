-- Offence codes with no entry in the taxonomy (offense_category = 'unmapped'): one row per
-- (source, offence code), most frequent first (at most 1000), with a description as published (the
-- smallest, when a code has several), the incidents, first and last seen, and how many distinct unmapped
-- codes there are in all. Read from the data-quality cube summary.source_weeks (ilp/summaries.sql).
SELECT source,
       unmapped_code AS offense_code,
       min(unmapped_description) AS description,
       sum(incidents)::BIGINT AS incidents,
       min(first_at)::DATE AS first_seen,
       max(last_at)::DATE AS last_seen,
       count(*) OVER () AS codes_in_all
FROM summary.source_weeks
WHERE unmapped
GROUP BY source, unmapped_code
ORDER BY incidents DESC, source, offense_code
LIMIT 1000;
