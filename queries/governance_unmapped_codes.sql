-- Offence codes with no entry in the taxonomy (offense_category = 'unmapped'): one row per
-- (source, offence code), most frequent first (at most 1000), with a description as published, the
-- incidents, first and last seen, and how many distinct unmapped codes there are in all.
SELECT source,
       offense_code,
       any_value(offense_description) AS description,
       count(*) AS incidents,
       min(occurred_at)::DATE AS first_seen,
       max(occurred_at)::DATE AS last_seen,
       count(*) OVER () AS codes_in_all
FROM incidents
WHERE offense_category = 'unmapped'
GROUP BY source, offense_code
ORDER BY incidents DESC, source, offense_code
LIMIT 1000;
