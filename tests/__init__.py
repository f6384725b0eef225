"""The test suite. `WAIT_S` is the one limit for every condition a test waits for (a model released, a thread
ended, a step reached): long enough for the busiest machine, reached only when the awaited thing never happens, so
a test's verdict never depends on how fast the machine is."""

WAIT_S = 300
