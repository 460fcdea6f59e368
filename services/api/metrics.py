"""Prometheus metrics of the API process."""
from prometheus_client import Counter, Histogram

REPORTS_ACCEPTED = Counter("spkt_reports_accepted_total", "Reports acknowledged by the broker", ["channel"])
REQUEST_SECONDS = Histogram("spkt_http_request_seconds", "HTTP request latency", ["method", "route", "status"])
INCIDENT_PAGES = Counter("spkt_incident_pages_total",
                         "Incident pages answered: kept (unchanged since built) or built", ["how"])
