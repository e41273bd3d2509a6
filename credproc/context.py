"""What one run of credproc carries through the providers: clock, terminal, cache, deadlines."""

import time

# The Go SDK (Terraform) kills a credential_process after 60 s; a waiter must give up well before.
LOCK_WAIT = 45.0
# ... and so must anything else a caller without a terminal waits for (a Duo push), counted from
# the start of the run.
UNATTENDED_WAIT = 45.0
LOGIN_LOCK_WAIT = 300.0


class Context:
    def __init__(self, config, store, terminal, force=False, lock_wait=LOCK_WAIT, clock=None, lock_deadline=None):
        self.config = config
        self.store = store
        self.terminal = terminal
        self.force = force
        self.clock = clock
        self.started = time.monotonic()
        self.lock_deadline = time.monotonic() + lock_wait if lock_deadline is None else lock_deadline
        # what a caller without a terminal may wait for (a Duo push), in time.monotonic()
        self.unattended_deadline = self.started + UNATTENDED_WAIT

    def now(self):
        return int(self.clock() if self.clock else time.time())
