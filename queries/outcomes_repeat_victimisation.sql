-- Repeat victimisation by month (ilp/analytics/outcomes.py `repeat_victimisation`): one row per month from
-- $month_from to $month_to (exclusive) with the month's victims, the people (pseudonymous person_key)
-- recorded as a victim in an incident in the district that occurred in the $repeat_months months up to the
-- month's end, and its repeat victims, those of them in two or more distinct incidents in those months.
-- Reads incidents from $window_from ($repeat_months - 1 months before $month_from) to $month_to only. Counts
-- only: no person_key or per-person row leaves the query.
WITH person_months AS (
    -- one row per (victim, month): the distinct incidents in which the person was a victim that month
    SELECT
        p.person_key,
        12 * year(i.occurred_at) + month(i.occurred_at) - 1 AS month_number,
        count(DISTINCT (i.source, i.source_id)) AS incidents  -- noqa: CP03, ST08, LT01, LT06
    FROM incidents AS i
    INNER JOIN incident_persons AS p ON i.source = p.source AND i.source_id = p.source_id
    WHERE
        i.occurred_at >= $window_from AND i.occurred_at < $month_to
        AND ($district IS NULL OR i.district = $district)
        AND p.role = 'victim'
    GROUP BY p.person_key, month_number
),

spans AS (
    -- A person's victim month M counts in the windows ending from M until the month before their next victim
    -- month, as long as the window still reaches back to M (victim_until). Over those months the person is a
    -- repeat victim while the window holds 2+ incidents: while it reaches back to M if M had 2+, else while it
    -- reaches back to their previous victim month (repeat_until; NULL: never).
    SELECT
        month_number AS first_end,
        least(
            month_number + $repeat_months - 1,
            coalesce(lead(month_number) OVER person - 1, month_number + $repeat_months - 1)
        ) AS victim_until,
        CASE
            WHEN incidents >= 2 THEN month_number + $repeat_months - 1
            ELSE lag(month_number) OVER person + $repeat_months - 1
        END AS repeat_until
    FROM person_months
    WINDOW person AS (PARTITION BY person_key ORDER BY month_number)
),

months AS (
    SELECT range AS month_number
    FROM range(12 * year($month_from) + month($month_from) - 1, 12 * year($month_to) + month($month_to) - 1)
)

SELECT
    make_date(CAST(m.month_number // 12 AS INTEGER), CAST(m.month_number % 12 + 1 AS INTEGER), 1) AS month,
    count(s.first_end) AS victims,
    count(s.first_end) FILTER (WHERE m.month_number <= s.repeat_until) AS repeat_victims
FROM months AS m
LEFT JOIN spans AS s ON m.month_number BETWEEN s.first_end AND s.victim_until
GROUP BY m.month_number
ORDER BY m.month_number;
