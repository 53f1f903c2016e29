"""The closed loop: retraining policy, the loop runner, and the demo that shows it."""
