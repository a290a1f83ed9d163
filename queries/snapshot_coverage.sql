-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row: what the incidents carry, so the
-- library can say which views are possible: how many incidents are placed in a beat and in a district
-- (and how many distinct of each), how many have a usable location (coordinates) and location text
-- (a block), and how many are dated to the exact time, to the day only and to the month only.
SELECT
    count(beat) AS with_beat,
    count(DISTINCT beat) AS beats,
    count(district) AS with_district,
    count(DISTINCT district) AS districts,
    count(*) FILTER (WHERE location_status = 'ok') AS located,
    count(location_text) AS with_location_text,
    count(*) FILTER (WHERE occurred_precision = 'exact') AS exact_times,
    count(*) FILTER (WHERE occurred_precision = 'day') AS day_only,
    count(*) FILTER (WHERE occurred_precision = 'month') AS month_only
FROM incidents;
