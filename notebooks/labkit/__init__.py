"""What the audit notebooks share: starting the processes they compare, driving load with
independent tools, scraping /metrics and recording results. It talks to the service only
through its command line and HTTP, never by importing `service`."""
