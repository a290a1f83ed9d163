-- "What came of it": for each done tasking given in the parallel lists $tasking_ids, $categories,
-- $area_levels, $area_ids and $anchor_dates (the day the tasking was created), the target's incidents
-- and harm in the 28 days before the anchor and the 28 days from it. A target is the offence category in
-- a district, a beat, or at a location (area_level 'location': incidents whose location_text is area_id).
-- One row per tasking: counts and harm before/after, how many of each window's days the snapshot
-- covers, and a Poisson z for the change in counts, 2 * (sqrt(after) - sqrt(before)) (Wheeler 2023),
-- given only when both windows are fully covered. Before/after only, NOT a causal estimate.
-- Harm = sum of incident_harm's harm ($harm_index, $harm_version; ilp/harm.sql): proactive categories
-- count 0.
WITH targets AS (
    SELECT unnest($tasking_ids)::BIGINT AS tasking_id,
           unnest($categories)::VARCHAR AS category,
           unnest($area_levels)::VARCHAR AS area_level,
           unnest($area_ids)::VARCHAR AS area_id,
           unnest($anchor_dates)::DATE AS anchor
),
coverage AS (
    SELECT min(occurred_at)::DATE AS first_day, max(occurred_at)::DATE AS last_day FROM incidents
),
counted AS (
    SELECT t.tasking_id,
           count(*) FILTER (WHERE i.occurred_at < t.anchor) AS before_incidents,
           count(*) FILTER (WHERE i.occurred_at >= t.anchor) AS after_incidents,
           coalesce(sum(i.harm) FILTER (WHERE i.occurred_at < t.anchor), 0) AS before_harm,
           coalesce(sum(i.harm) FILTER (WHERE i.occurred_at >= t.anchor), 0) AS after_harm
    FROM targets t
    JOIN incident_harm($harm_index, $harm_version) i
      ON i.offense_category = t.category
     AND i.occurred_at >= t.anchor - INTERVAL 28 DAY
     AND i.occurred_at < t.anchor + INTERVAL 28 DAY
     AND ((t.area_level = 'district' AND i.district = t.area_id)
          OR (t.area_level = 'beat' AND i.beat = t.area_id)
          OR (t.area_level = 'location' AND i.location_text = t.area_id))
    GROUP BY t.tasking_id
),
windows AS (
    SELECT t.*,
           coalesce(c.before_incidents, 0) AS before_incidents,
           coalesce(c.after_incidents, 0) AS after_incidents,
           coalesce(c.before_harm, 0) AS before_harm,
           coalesce(c.after_harm, 0) AS after_harm,
           greatest(0, least(t.anchor, v.last_day + 1) - greatest(t.anchor - 28, v.first_day)) AS before_days_covered,
           greatest(0, least(t.anchor + 28, v.last_day + 1) - greatest(t.anchor, v.first_day)) AS after_days_covered
    FROM targets t CROSS JOIN coverage v LEFT JOIN counted c USING (tasking_id)
)
SELECT tasking_id,
       anchor AS created_on,
       before_incidents,
       after_incidents,
       before_harm,
       after_harm,
       before_days_covered,
       after_days_covered,
       CASE WHEN before_days_covered = 28 AND after_days_covered = 28
            THEN 2 * (sqrt(after_incidents) - sqrt(before_incidents)) END AS poisson_z,
       CASE WHEN after_days_covered < 28
                THEN 'After window incomplete: the data covers ' || after_days_covered || ' of its 28 days'
            WHEN before_days_covered < 28
                THEN 'Before window incomplete: the data covers ' || before_days_covered || ' of its 28 days'
            WHEN 2 * (sqrt(after_incidents) - sqrt(before_incidents)) <= -3 THEN 'Fewer after: larger than chance (z ≤ −3)'
            WHEN 2 * (sqrt(after_incidents) - sqrt(before_incidents)) >= 3 THEN 'More after: larger than chance (z ≥ 3)'
            ELSE 'Change within chance (|z| < 3)' END AS reading
FROM windows
ORDER BY tasking_id;
