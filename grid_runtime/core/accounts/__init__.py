"""What the Node and the Network share about their people: the columns of their users, roles and tokens
(``models``), the API shapes of setup, login and tokens (``schemas``), and the logic that is the same on both
(``service``: preset roles, the one-time setup token, the Owner's creation). Each service keeps its own tables,
on its own metadata, and its own audit log; these modules take its table classes as arguments."""
