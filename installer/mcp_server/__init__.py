"""The project's own MCP server: what an agent may read and write in the learning database.

Started by MCP clients as `<.venv python> install.py mcp-server --url URL` (see mcp_config.py);
it speaks MCP over stdio and connects as the agent role, password from ~/.pgpass or the
project's .env. Reads run one statement per call in a READ ONLY transaction with a statement
timeout and a row cap; writes are typed tools that call the `agent_api` schema's functions,
the only writes the agent role may make (sql/agent_api/).
"""
