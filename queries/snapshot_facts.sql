-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row: the first and last day with incident
-- data (NULL when there are none) and the number of incidents. From the snapshot's summary (ilp/summaries.sql).
SELECT first_day, last_day, incidents
FROM summary.facts;
