"""The supervisors' live view: queue state from AMI events, a web view, Prometheus metrics, a terminal view."""
