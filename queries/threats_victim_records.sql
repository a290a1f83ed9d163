-- Whether the snapshot holds victim records at all (ilp/analytics/threats.py, the brief's repeat-victims
-- tab): one row, victim_records 1 when any incident_persons row has role 'victim', 0 when none (e.g.
-- Chicago's public export, which publishes no victims). Stops at the first such row instead of counting
-- every victim in the warehouse's history.
SELECT CAST(EXISTS (SELECT 1 FROM incident_persons WHERE role = 'victim') AS INTEGER) AS victim_records;
