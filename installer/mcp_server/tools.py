"""The MCP tools: read (`query`, `list_tables`, `describe_table`, `search`) and typed writes.

Each write tool maps to one `agent_api` function (sql/agent_api/001_agent_api.sql), which
validates and caps what it is given; the types below only shape the JSON schema the client
sees and the casts sent with the parameters.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from installer.credentials import ConnInfo
from installer.mcp_server.database import AgentError, Limits, read, write

INSTRUCTIONS = """\
The learning database of this project. Read with `query` (one SQL statement per call, read
only, limited time and rows), `list_tables`, `describe_table` and `search`. Record what you do
with the typed tools: record_interaction, record_agent_metric, add_memory, create_artifact,
claim_task, update_task_status, submit_feedback, enqueue_learning. Nothing else can write."""

Id = Annotated[str | None, Field(description="a UUID from an earlier answer")]
Json = Annotated[dict[str, Any] | None, Field(description="any JSON object (at most 64 KB)")]
AgentName = Annotated[str | None, Field(description="the agent's name, e.g. 'code-reviewer'")]

_LIST_TABLES = """
SELECT c.relname AS name,
       CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END
           AS kind,
       greatest(c.reltuples, 0)::bigint AS estimated_rows,
       obj_description(c.oid, 'pg_class') AS comment
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
   AND has_table_privilege(c.oid, 'SELECT')
 ORDER BY 1"""

_DESCRIBE = """
SELECT a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default,
       col_description(a.attrelid, a.attnum) AS comment
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'public' AND c.relname = %(table)s)
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum"""

_CONSTRAINTS = """
SELECT conname AS name, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE conrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relname = %(table)s)
 ORDER BY contype, conname"""

_SEARCH = """
SELECT source, id, session_id, rank, snippet FROM search_content(%(text)s, %(limit)s)
UNION ALL
SELECT 'knowledge', q.id, q.session_id,
       ts_rank(to_tsvector('english', q.content), websearch_to_tsquery('english', %(text)s)),
       ts_headline('english', q.content, websearch_to_tsquery('english', %(text)s))
  FROM learning_queue q
 WHERE q.status <> 'rejected'
   AND to_tsvector('english', q.content) @@ websearch_to_tsquery('english', %(text)s)
 ORDER BY rank DESC, id
 LIMIT %(limit)s"""

# Knowledge items like the given embedding, or like the knowledge items the text matched.
_SIMILAR_TO_EMBEDDING = """
SELECT id, content, status, confidence, similarity
  FROM check_similar_knowledge(%(embedding)s::real[], %(threshold)s, %(limit)s)"""
_SIMILAR_TO_HITS = """
SELECT DISTINCT ON (s.id) s.id, s.content, s.status, s.confidence, s.similarity,
       q.id AS similar_to
  FROM learning_queue q,
       LATERAL check_similar_knowledge(q.embedding::real[], %(threshold)s, %(limit)s) s
 WHERE q.id = ANY(%(ids)s::uuid[]) AND q.embedding IS NOT NULL AND s.id <> q.id
 ORDER BY s.id, s.similarity DESC"""


def build_server(agent: ConnInfo, limits: Limits) -> MCPServer:
    server: MCPServer = MCPServer("learning-db", instructions=INSTRUCTIONS, log_level="WARNING")

    def answer(call: Callable[[], Any]) -> str:
        try:
            result = call()
        except AgentError as exc:
            raise ToolError(str(exc)) from exc
        return result if isinstance(result, str) else json.dumps(result, default=str)

    def record(function: str, types: dict[str, str], **args: Any) -> str:
        return answer(lambda: {"id": write(agent, limits, function, args, types)})

    @server.tool()
    def query(sql: Annotated[str, Field(description="exactly one SQL statement")]) -> str:
        """Run one read-only SQL statement and return its rows as JSON (at most the server's
        row cap; the statement is cancelled after the server's timeout)."""
        return answer(lambda: read(agent, limits, sql).as_text())

    @server.tool()
    def list_tables() -> str:
        """The tables and views you can read, with estimated row counts."""
        return answer(lambda: read(agent, limits, _LIST_TABLES).as_text())

    @server.tool()
    def describe_table(table: str) -> str:
        """A table's columns (type, nullable, default) and constraints."""
        def describe() -> dict[str, Any]:
            columns = read(agent, limits, _DESCRIBE, {"table": table}).rows
            if not columns:
                raise AgentError(f"no table {table!r} in the learning database: "
                                 "list_tables shows them")
            return {"table": table, "columns": columns,
                    "constraints": read(agent, limits, _CONSTRAINTS, {"table": table}).rows}
        return answer(describe)

    @server.tool()
    def search(text: Annotated[str, Field(description="words, \"a phrase\", -excluded, or")],
               limit: Annotated[int, Field(ge=1, le=100)] = 20,
               embedding: Annotated[list[float] | None, Field(
                   description="optional 768-dimension embedding for similar knowledge")] = None,
               threshold: Annotated[float, Field(ge=0, le=1)] = 0.85) -> str:
        """Full-text search over conversation chunks, memories, artifacts and knowledge (the
        learning queue), best match first; plus knowledge with similar embeddings."""
        def run() -> dict[str, Any]:
            hits = read(agent, limits, _SEARCH, {"text": text, "limit": limit}).rows
            knowledge = [hit["id"] for hit in hits if hit["source"] == "knowledge"]
            similar_to = {"threshold": threshold, "limit": limit}
            similar = read(agent, limits, _SIMILAR_TO_EMBEDDING, {
                "embedding": embedding, **similar_to}).rows if embedding else []
            if knowledge:
                similar += read(agent, limits, _SIMILAR_TO_HITS,
                                {"ids": knowledge, **similar_to}).rows
            return {"matches": hits, "similar_knowledge": similar}
        return answer(run)

    @server.tool()
    def record_interaction(from_agent: str, to_agent: str, message_type: str,
                           payload: Json = None, response: str | None = None,
                           duration_ms: float | None = None, metadata: Json = None) -> str:
        """Record a message between agents (or between the user and an agent)."""
        return record("record_interaction", {
            "from_agent": "text", "to_agent": "text", "message_type": "text",
            "payload": "jsonb", "response": "text", "duration_ms": "float8",
            "metadata": "jsonb"}, from_agent=from_agent, to_agent=to_agent,
            message_type=message_type, payload=payload, response=response,
            duration_ms=duration_ms, metadata=metadata)

    @server.tool()
    def record_agent_metric(agent_name: str, task_type: str, success: bool,
                            execution_time_ms: float | None = None,
                            error_message: str | None = None, metadata: Json = None) -> str:
        """Record how one piece of an agent's work went."""
        return record("record_agent_metric", {
            "agent_name": "text", "task_type": "text", "success": "boolean",
            "execution_time_ms": "float8", "error_message": "text", "metadata": "jsonb"},
            agent_name=agent_name, task_type=task_type, success=success,
            execution_time_ms=execution_time_ms, error_message=error_message,
            metadata=metadata)

    @server.tool()
    def add_memory(content: str, memory_type: str = "fact",
                   tags: Annotated[list[str] | None, Field(
                       description="at most 32 tags of at most 64 characters")] = None,
                   importance: Annotated[float, Field(ge=0, le=1)] = 0.5,
                   session_id: Id = None, agent_name: AgentName = None,
                   metadata: Json = None) -> str:
        """Remember something (an idea, decision, question, fact) for later sessions."""
        return record("add_memory", {
            "content": "text", "memory_type": "text", "tags": "text[]",
            "importance": "float8", "session_id": "uuid", "agent_name": "text",
            "metadata": "jsonb"}, content=content, memory_type=memory_type, tags=tags,
            importance=importance, session_id=session_id, agent_name=agent_name,
            metadata=metadata)

    @server.tool()
    def create_artifact(name: str, content: str | None = None, artifact_type: str = "file",
                        uri: str | None = None, session_id: Id = None, task_id: Id = None,
                        agent_name: AgentName = None, metadata: Json = None) -> str:
        """Store something you produced (code, a document, a report), or a link to it."""
        return record("create_artifact", {
            "name": "text", "content": "text", "artifact_type": "text", "uri": "text",
            "session_id": "uuid", "task_id": "uuid", "agent_name": "text",
            "metadata": "jsonb"}, name=name, content=content, artifact_type=artifact_type,
            uri=uri, session_id=session_id, task_id=task_id, agent_name=agent_name,
            metadata=metadata)

    @server.tool()
    def claim_task(agent_type: str, agent_name: str) -> str:
        """Claim the most urgent pending task for this agent type; the task as JSON, or null
        when none is waiting. Concurrent claims never get the same task."""
        return answer(lambda: write(agent, limits, "claim_task", {
            "agent_type": agent_type, "agent_name": agent_name},
            {"agent_type": "text", "agent_name": "text"}))

    @server.tool()
    def update_task_status(task_id: str, status: Annotated[str, Field(
            description="pending, claimed, running, completed, failed or cancelled")],
            result: Json = None, error: str | None = None) -> str:
        """Move a task along pending -> claimed -> running -> completed | failed, with its
        result or error; returns the task."""
        return answer(lambda: write(agent, limits, "update_task_status", {
            "task_id": task_id, "status": status, "result": result, "error": error},
            {"task_id": "uuid", "status": "text", "result": "jsonb", "error": "text"}))

    @server.tool()
    def submit_feedback(feedback_type: Annotated[str, Field(
            description="thumbs_up, thumbs_down, rating or comment")],
            rating: Annotated[int | None, Field(ge=1, le=5)] = None,
            comment: str | None = None, session_id: Id = None, chunk_id: Id = None,
            given_by: str | None = None, metadata: Json = None) -> str:
        """Rate a response; negative feedback becomes a learning item awaiting approval."""
        return record("submit_feedback", {
            "feedback_type": "text", "rating": "integer", "comment": "text",
            "session_id": "uuid", "chunk_id": "uuid", "given_by": "text",
            "metadata": "jsonb"}, feedback_type=feedback_type, rating=rating,
            comment=comment, session_id=session_id, chunk_id=chunk_id, given_by=given_by,
            metadata=metadata)

    @server.tool()
    def enqueue_learning(content: str, context: str | None = None, session_id: Id = None,
                         confidence: Annotated[float, Field(ge=0, le=1)] = 0.5,
                         priority: Annotated[int, Field(ge=0, le=3)] = 0,
                         embedding: Annotated[list[float] | None, Field(
                             description="optional 768-dimension embedding")] = None,
                         metadata: Json = None) -> str:
        """Propose something to learn; it waits for approval in the learning queue."""
        return record("enqueue_learning", {
            "content": "text", "context": "text", "session_id": "uuid",
            "confidence": "float8", "priority": "integer", "embedding": "real[]",
            "metadata": "jsonb"}, content=content, context=context, session_id=session_id,
            confidence=confidence, priority=priority, embedding=embedding, metadata=metadata)

    return server

