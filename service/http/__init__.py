"""HTTP: request parsing, status codes and headers. Thin: rules live in use cases and domain."""
