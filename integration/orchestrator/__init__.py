"""The orchestrator: process definitions (what each step is, on which component) and the engine
that sends each step as a command, retries it and knows where every process stands."""
