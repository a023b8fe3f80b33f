"""Who is calling: tokens, the issuers the workers trust, and the clients' credential header."""
