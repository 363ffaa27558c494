"""Provincial review: the queue, claims, decisions and bulk approval; and the staff inbox where any other role's
tasks are done."""
