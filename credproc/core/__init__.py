"""The shared core: what the sources, the wiring and the commands all stand on, and which imports
nothing above it. Credentials and errors, the encrypted store and its keys, locks, the STS and HTTP
clients, prompts and the terminal, the user's files (paths, ~/.aws files), browsers and loopback
listeners."""
