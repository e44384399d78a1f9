"""Development stack: embedded services and the processes `make dev` and the e2e tests run."""
