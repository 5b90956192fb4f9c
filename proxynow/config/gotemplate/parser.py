"""Go text/template parsing: the lexer's pieces into statement trees, one per template.

`parse(source, functions)` returns the main template's statements and every `define`d
(or `block`) template by name. It checks what Go checks at parse time: keywords in their
place (`else`/`end` matched, `break`/`continue` only in a `range`, `define` only at the
top level), variables defined before use, functions known. Nesting is bounded (`MAX_NESTING`)
so that no input can exhaust the interpreter's stack.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass, field

from proxynow.config.gotemplate.errors import TemplateError
from proxynow.config.gotemplate.lexer import Action, Text, Token, lex
from proxynow.config.gotemplate.nodes import (
    Arg,
    Chain,
    Command,
    Const,
    Control,
    Dot,
    Field,
    Ident,
    Jump,
    Nil,
    Node,
    Output,
    Pipeline,
    TemplateCall,
    TextNode,
    Variable,
)

__all__ = ["MAX_NESTING", "Parsed", "parse"]

MAX_NESTING = 100
"""Control structures and parentheses nested deeper than this are an error."""


@dataclass(frozen=True, slots=True)
class Parsed:
    main: tuple[Node, ...]
    templates: dict[str, tuple[Node, ...]]


def parse(source: str, functions: Container[str]) -> Parsed:
    parser = _Parser(lex(source), functions, len(source))
    main = parser.top_level()
    return Parsed(main, parser.templates)


@dataclass(slots=True)
class _End:
    """The action that ended a list: `end` or `else` (with the tokens after `else`)."""

    keyword: str
    rest: tuple[Token, ...]
    pos: int


@dataclass(slots=True)
class _Parser:
    pieces: list[Text | Action]
    functions: Container[str]
    size: int
    at: int = 0
    scopes: list[str] = field(default_factory=lambda: ["$"])
    ranges: int = 0
    depth: int = 0
    templates: dict[str, tuple[Node, ...]] = field(default_factory=dict)

    def top_level(self) -> tuple[Node, ...]:
        nodes, end = self.statements(top=True)
        if end is not None:
            raise TemplateError(f"unexpected {{{{{end.keyword}}}}}", end.pos)
        return nodes

    def statements(self, top: bool = False) -> tuple[tuple[Node, ...], _End | None]:
        """Statements up to an `end` or `else` (returned), or the end of the template."""
        nodes: list[Node] = []
        while self.at < len(self.pieces):
            piece = self.pieces[self.at]
            self.at += 1
            if isinstance(piece, Text):
                nodes.append(TextNode(piece.text, piece.pos))
                continue
            tokens = piece.tokens
            if not tokens:
                raise TemplateError("missing value for command", piece.pos)
            head = tokens[0]
            if head.kind == "keyword" and head.value in ("end", "else"):
                if head.value == "end" and len(tokens) > 1:
                    raise TemplateError("unexpected token in end", tokens[1].pos)
                return tuple(nodes), _End(head.value, tokens[1:], piece.pos)
            if head.kind == "keyword" and head.value == "define":
                if not top:
                    raise TemplateError("unexpected <define> in command", head.pos)
                self.define(tokens[1:], piece.pos)
                continue
            nodes.append(self.statement(tokens, piece.pos))
        return tuple(nodes), None

    def statement(self, tokens: tuple[Token, ...], pos: int) -> Node:
        head = tokens[0]
        if head.kind != "keyword":
            return Output(self.pipeline(tokens, pos, declare=True), pos)
        keyword = head.value
        if keyword in ("if", "with", "range"):
            return self.control(keyword, tokens[1:], pos)
        if keyword in ("break", "continue"):
            if self.ranges == 0:
                raise TemplateError(f"{{{{{keyword}}}}} outside {{{{range}}}}", pos)
            if len(tokens) > 1:
                raise TemplateError(f"unexpected token in {{{{{keyword}}}}}", tokens[1].pos)
            return Jump(keyword, pos)
        if keyword == "template":
            name, rest = self.template_name(tokens[1:], pos, "template")
            pipe = self.pipeline(rest, pos, declare=False) if rest else None
            return TemplateCall(name, pipe, pos)
        if keyword == "block":
            return self.block(tokens[1:], pos)
        raise TemplateError(f"unexpected <{keyword}> in command", head.pos)

    def template_name(
        self, tokens: Sequence[Token], pos: int, context: str
    ) -> tuple[str, tuple[Token, ...]]:
        if not tokens or tokens[0].kind != "string":
            raise TemplateError(f"missing or bad name in {{{{{context}}}}}", pos)
        return tokens[0].value, tuple(tokens[1:])

    def define(self, tokens: Sequence[Token], pos: int) -> None:
        name, rest = self.template_name(tokens, pos, "define")
        if rest:
            raise TemplateError("unexpected token in {{define}}", rest[0].pos)
        self.templates[name] = self.template_body(pos, "define")

    def block(self, tokens: Sequence[Token], pos: int) -> Node:
        name, rest = self.template_name(tokens, pos, "block")
        pipe = self.pipeline(rest, pos, declare=False) if rest else None
        self.templates[name] = self.template_body(pos, "block")
        return TemplateCall(name, pipe, pos)

    def template_body(self, pos: int, context: str) -> tuple[Node, ...]:
        """A defined template's statements: its own variables (only `$`), no range."""
        saved = self.scopes, self.ranges
        self.scopes, self.ranges = ["$"], 0
        self.enter(pos)
        try:
            body, end = self.statements()
        finally:
            self.scopes, self.ranges = saved
            self.depth -= 1
        if end is None or end.keyword != "end":
            raise TemplateError(f"unexpected EOF in {{{{{context}}}}}", pos)
        return body

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise TemplateError(f"nested deeper than {MAX_NESTING} levels", pos)

    def control(self, kind: str, tokens: tuple[Token, ...], pos: int) -> Control:
        mark = len(self.scopes)
        self.enter(pos)
        try:
            pipe = self.pipeline(tokens, pos, declare=True, pair=kind == "range")
            self.ranges += kind == "range"
            body, end = self.statements()
            self.ranges -= kind == "range"
            orelse = self.orelse(kind, end, pos)
        finally:
            del self.scopes[mark:]
            self.depth -= 1
        return Control(kind, pipe, body, orelse, pos)

    def orelse(self, kind: str, end: _End | None, pos: int) -> tuple[Node, ...]:
        if end is None:
            raise TemplateError(f"unexpected EOF in {{{{{kind}}}}}", pos)
        if end.keyword == "end":
            return ()
        chained = end.rest[:1] and end.rest[0].kind == "keyword" and end.rest[0].value
        if chained == kind and kind in ("if", "with"):
            # `{{else if x}}` is `{{else}}{{if x}}...{{end}}{{end}}` with one shared end.
            return (self.control(kind, end.rest[1:], end.pos),)
        if end.rest:
            raise TemplateError("unexpected token in else", end.rest[0].pos)
        nodes, last = self.statements()
        if last is None:
            raise TemplateError(f"unexpected EOF in {{{{{kind}}}}}", pos)
        if last.keyword != "end":
            raise TemplateError(f"expected end; found {{{{else}}}} in {{{{{kind}}}}}", last.pos)
        return nodes

    # ------------------------------------------------------------ pipelines

    def pipeline(
        self, tokens: Sequence[Token], pos: int, *, declare: bool, pair: bool = False
    ) -> Pipeline:
        decl, assign, rest = self.declaration(tokens, declare, pair)
        if not rest:
            raise TemplateError("missing value for command", pos)
        cmds: list[Command] = []
        start = 0
        depth = 0  # a `|` inside parentheses belongs to the inner pipeline
        for index, token in enumerate([*rest, None]):
            if token is not None:
                depth += {"lparen": 1, "rparen": -1}.get(token.kind, 0)
            if token is None or (token.kind == "pipe" and depth == 0):
                part = rest[start:index]
                if not part:
                    raise TemplateError("missing command in pipeline", pos)
                cmds.append(self.command(part, len(cmds)))
                start = index + 1
        self.scopes.extend(name for name in decl if not assign)
        return Pipeline(tuple(decl), assign, tuple(cmds), pos)

    def declaration(
        self, tokens: Sequence[Token], declare: bool, pair: bool
    ) -> tuple[list[str], bool, Sequence[Token]]:
        kinds = [t.kind for t in tokens[:4]]
        if declare and kinds[:2] in (["var", "declare"], ["var", "assign"]):
            names, assign, rest = [tokens[0].value], kinds[1] == "assign", tokens[2:]
        elif pair and kinds == ["var", "comma", "var", "declare"]:
            names, assign, rest = [tokens[0].value, tokens[2].value], False, tokens[4:]
        else:
            return [], False, tokens
        for token, name in zip(tokens, names, strict=False):
            if assign and name not in self.scopes:
                raise TemplateError(f"undefined variable {name!r}", token.pos)
        return names, assign, rest

    def command(self, tokens: Sequence[Token], stage: int) -> Command:
        args: list[Arg] = []
        at = 0
        while at < len(tokens):
            arg, at = self.operand(tokens, at)
            args.append(arg)
        first = args[0]
        if len(args) > 1 and not isinstance(first, Ident | Field | Variable | Chain):
            raise TemplateError("can't give argument to non-function", tokens[0].pos)
        if stage > 0 and isinstance(first, Const | Nil | Dot):
            raise TemplateError(f"non executable command in pipeline stage {stage + 1}", first.pos)
        return Command(tuple(args), tokens[0].pos)

    def operand(self, tokens: Sequence[Token], at: int) -> tuple[Arg, int]:
        """One operand from `tokens[at]`: a term and the field chain glued to it."""
        token = tokens[at]
        term, at = self.term(tokens, at)
        names: list[str] = []
        while at < len(tokens) and tokens[at].kind == "field" and not tokens[at].spaced:
            names.append(tokens[at].value)
            at += 1
        if not names:
            return term, at
        if isinstance(term, Field):
            return Field(term.names + tuple(names), term.pos), at
        if isinstance(term, Variable):
            return Variable(term.name, term.names + tuple(names), term.pos), at
        if isinstance(term, Pipeline | Dot):
            return Chain(term, tuple(names), token.pos), at
        raise TemplateError("unexpected . after term", token.pos)

    def term(self, tokens: Sequence[Token], at: int) -> tuple[Arg, int]:
        token = tokens[at]
        kind = token.kind
        if kind == "ident":
            if token.value not in self.functions:
                raise TemplateError(f"function {token.value!r} not defined", token.pos)
            return Ident(token.value, token.pos), at + 1
        if kind == "dot":
            return Dot(token.pos), at + 1
        if kind == "field":
            return Field((token.value,), token.pos), at + 1
        if kind == "var":
            if token.value not in self.scopes:
                raise TemplateError(f"undefined variable {token.value!r}", token.pos)
            return Variable(token.value, (), token.pos), at + 1
        if kind in ("string", "number", "bool"):
            return Const(token.value, token.pos), at + 1
        if kind == "nil":
            return Nil(token.pos), at + 1
        if kind == "lparen":
            return self.parenthesised(tokens, at)
        raise TemplateError(f"unexpected {token.value!r} in operand", token.pos)

    def parenthesised(self, tokens: Sequence[Token], at: int) -> tuple[Arg, int]:
        depth = 0
        for index in range(at, len(tokens)):
            depth += {"lparen": 1, "rparen": -1}.get(tokens[index].kind, 0)
            if depth == 0:
                self.enter(tokens[at].pos)
                try:
                    inner = self.pipeline(tokens[at + 1 : index], tokens[at].pos, declare=False)
                finally:
                    self.depth -= 1
                return inner, index + 1
        raise TemplateError("unclosed left paren", tokens[at].pos)
