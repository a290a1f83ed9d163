-- One row: resident population of the chosen district ($district) or of all districts, from the areas
-- table (`ilp areas --population`), and how many districts have no population (NULL total when none do).
SELECT
    sum(population) AS population,
    count(*) AS districts,
    count(*) FILTER (WHERE population IS NULL) AS districts_without_population
FROM areas
WHERE level = 'district' AND ($district IS NULL OR area_id = $district);
