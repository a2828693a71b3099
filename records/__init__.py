"""Call records, transfers, callback requests, work orders and the routing-table audit trail, in SQL.

Records go to a local durable spool first and reach the database in the background (records.recorder),
so a database outage never costs a call or a record. Caller numbers are stored masked plus a keyed hash.
"""
