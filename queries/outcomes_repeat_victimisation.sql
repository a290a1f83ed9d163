-- Repeat victimisation by month (ilp/analytics/outcomes.py `repeat_victimisation`): one row per month from
-- $month_from to $month_to (exclusive) with the month's victims, the people (pseudonymous person_key)
-- recorded as a victim in an incident in the district that occurred in the $repeat_months months up to the
-- month's end, and its repeat victims, those of them in two or more distinct incidents in those months.
-- Reads incidents from $window_from ($repeat_months - 1 months before $month_from) to $month_to only. Counts
-- only: no person_key or per-person row leaves the query. At most 127 months from $window_from to $month_to
-- (a month is a bit of a HUGEINT); more fails with DuckDB's "Overflow in left shift".
WITH person_months AS (
    -- one row per (victim, month): the distinct incidents in which the person was a victim that month, the
    -- month numbered from $window_from (0)
    SELECT
        p.person_key,
        12 * (year(i.occurred_at) - year($window_from)) + month(i.occurred_at) - month($window_from) AS month_number,
        count(DISTINCT (i.source, i.source_id)) AS incidents  -- noqa: CP03, ST08, LT01, LT06
    FROM incidents AS i
    INNER JOIN incident_persons AS p ON i.source = p.source AND i.source_id = p.source_id
    WHERE
        i.occurred_at >= $window_from AND i.occurred_at < $month_to
        AND ($district IS NULL OR i.district = $district)
        AND p.role = 'victim'
    GROUP BY p.person_key, month_number
),

people AS (
    -- one row per victim: their victim months as bits (bit n = month n), and the months with 2+ incidents
    SELECT
        bit_or(CAST(1 AS HUGEINT) << CAST(month_number AS HUGEINT)) AS victim_months,
        bit_or(
            CASE WHEN incidents >= 2 THEN CAST(1 AS HUGEINT) << CAST(month_number AS HUGEINT) ELSE 0 END
        ) AS busy_months
    FROM person_months
    GROUP BY person_key
),

patterns AS (
    -- people with the same months are counted once, with their number
    SELECT
        victim_months,
        busy_months,
        count(*) AS people
    FROM people
    GROUP BY victim_months, busy_months
),

reported AS (
    -- each reported month, and its window as bits: the $repeat_months months up to it
    SELECT
        range AS month_number,
        ((CAST(1 AS HUGEINT) << CAST($repeat_months AS HUGEINT)) - 1)
        << CAST(range - $repeat_months + 1 AS HUGEINT) AS window_months
    FROM range(
        12 * (year($month_from) - year($window_from)) + month($month_from) - month($window_from),
        12 * (year($month_to) - year($window_from)) + month($month_to) - month($window_from)
    )
)

SELECT
    CAST(CAST($window_from AS DATE) + to_months(CAST(r.month_number AS INTEGER)) AS DATE) AS month,
    CAST(coalesce(sum(p.people) FILTER (WHERE p.victim_months & r.window_months <> 0), 0) AS BIGINT) AS victims,
    CAST(coalesce(
        sum(p.people) FILTER (
            WHERE bit_count(p.victim_months & r.window_months) >= 2 OR p.busy_months & r.window_months <> 0
        ),
        0
    ) AS BIGINT) AS repeat_victims
FROM reported AS r
LEFT JOIN patterns AS p ON true  -- every reported month, also without victims
GROUP BY r.month_number
ORDER BY r.month_number;
