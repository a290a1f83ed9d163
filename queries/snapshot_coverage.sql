-- What a snapshot offers (ilp/snapshot.py `SnapshotInfo`). One row: what the incidents carry, so the
-- library can say which views are possible: how many incidents are placed in a beat and in a district
-- (and how many distinct of each), how many have a usable location (coordinates) and location text
-- (a block), and how many are dated to the exact time, to the day only and to the month only.
-- From the snapshot's summary (ilp/summaries.sql).
SELECT with_beat, beats, with_district, districts, located, with_location_text, exact_times, day_only, month_only
FROM summary.facts;
