-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row: the first and last day with incident
-- data (NULL when there are none) and the number of incidents.
SELECT
    CAST(min(occurred_at) AS DATE) AS first_day,
    CAST(max(occurred_at) AS DATE) AS last_day,
    count(*) AS incidents
FROM incidents;
