"""Lab-only code: the deliberately naive baselines the performance lab measures production
against. Only the bootstrap imports this package (an import-linter contract holds it), and only
when a lab switch asks for it; APP_ENV=production refuses every lab switch."""
