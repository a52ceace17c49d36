"""Who may use the central server: users with a role, API tokens, login sessions and their checks.

`passwords` hashes (argon2), `secrets` makes and hashes tokens and session ids, `schema` and
`store` keep them in the database, `ratelimit` slows password guessing, `authenticate` turns a
request into a `Principal`. Routes never do this themselves: they declare `server.deps.ViewerDep`
or `AdminDep`.
"""
