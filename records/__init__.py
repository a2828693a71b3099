"""Call records, transfers, callback requests, work orders, the routing-table audit trail and the supervisors'
action audit trail, in SQL.

Records go to a local durable spool first and reach the database in the background (records.recorder,
records.actions), so a database outage never costs a call or a record. Caller numbers are stored masked plus a
keyed hash; a callback number is also kept encrypted (records.callbacks) until the request is done.
"""
