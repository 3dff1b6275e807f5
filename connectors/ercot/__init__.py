"""ERCOT: MIS report documents and the public-reports API (token based), plus the dashboards.

`feeds` names the reports and ERCOT's codes, `timelabels` reads its local time labels,
`documents` unpacks its payloads, `parse` turns them into records, `client` fetches them and
`simulate` renders the same formats from the shared simulator model.
"""
