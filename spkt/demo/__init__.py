"""The Jakarta demo (`spkt up --demo`): units that register and move, and a steady flow of reports.

`jakarta.json` holds the invented, approximate demo data; `flow.run` is the process that plays it.
"""
