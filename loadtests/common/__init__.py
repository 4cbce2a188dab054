"""The pickup service's load scenarios; loadtests/locustfile.py wires them into Locust."""
