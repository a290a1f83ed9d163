-- Whether the snapshot holds victim records at all (ilp/analytics/threats.py, the brief's repeat-victims
-- tab): one row with the number of incident_persons rows with role 'victim' (0 in, e.g., Chicago's public
-- export, which publishes no victims).
SELECT count(*) AS victim_records FROM incident_persons WHERE role = 'victim';
