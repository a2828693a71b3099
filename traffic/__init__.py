"""Traffic: replay recorded calls against a candidate table, and forecast the agents each queue needs.

Layering: above routing/ and records/ (reads their values and rows), below scripts/ and supervisor/.
The maths (erlang, simulate, forecast, replay) is pure: rows and tables in, values out; `source` and
`synth` are the only modules that touch the database.
"""
