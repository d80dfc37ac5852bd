"""What exists to exercise the product, not part of it: the local emulator (moto), fault injection,
Lambda's delivery simulated, the deterministic simulation, the soak and the demo. The Lambda handler
never imports it."""
