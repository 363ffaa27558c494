"""Declaration plans: publishing, editing and extending them, the plan data processes hold, closing the window,
results and the public announcement."""
