"""WhatsApp's binary XML nodes (whatsmeow `binary/`): the node model shared by every part of the
emulator, and the codec.

Interface (stable: the protocol layer codes against it):
- `JID(user, server, device=0, agent=0, integrator=0)`; `str(jid)` is whatsmeow's text form
  (`user.agent:device@server`, parts omitted when zero). Attribute values that are JIDs on the
  wire MUST be `JID` instances (whatsmeow rejects a JID sent as a plain string).
- `Node(tag, attrs={}, content=None)`: content is `None`, `bytes`, or `list[Node]`.
  Attribute values are `str` or `JID` (encode also accepts int and bool: written as text).
- `encode(node) -> bytes`: the payload of one frame, including whatsmeow's leading flags byte.
- `decode(data) -> Node`: the inverse, for a whole frame payload (flags byte, zlib if flagged).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from emulator import tokens as t

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
HOSTED_SERVER = "hosted"
HOSTED_LID_SERVER = "hosted.lid"
MESSENGER_SERVER = "msgr"
INTEROP_SERVER = "interop"

# Servers whose device JIDs are written as AD_JID, with the domain byte standing for the server.
_DOMAIN_OF_SERVER = {USER_SERVER: 0, LID_SERVER: 1, HOSTED_SERVER: 128, HOSTED_LID_SERVER: 129}
_SERVER_OF_DOMAIN = {1: LID_SERVER, 128: HOSTED_SERVER, 129: HOSTED_LID_SERVER}


class DecodeError(ValueError):
    """The bytes are not a well-formed node (whatsmeow's decoder would reject them too)."""


@dataclass(frozen=True)
class JID:
    """A WhatsApp address. `agent` is whatsmeow's RawAgent (0 for plain users)."""

    user: str
    server: str
    device: int = 0
    agent: int = 0
    integrator: int = 0

    def __str__(self) -> str:
        if not self.server:
            return ""
        if self.agent > 0:
            return f"{self.user}.{self.agent}:{self.device}@{self.server}"
        if self.device > 0:
            return f"{self.user}:{self.device}@{self.server}"
        if self.user:
            return f"{self.user}@{self.server}"
        return self.server

    @classmethod
    def parse(cls, text: str) -> JID:
        """The inverse of `str()` (whatsmeow's ParseJID, without its error cases)."""
        if "@" not in text:
            return cls("", text)
        user, server = text.split("@", 1)
        agent = device = 0
        if "." in user:
            user, ad = user.split(".", 1)
            agent_text, _, device_text = ad.partition(":")
            agent = int(agent_text)
            device = int(device_text or 0)
        elif ":" in user:
            user, device_text = user.split(":", 1)
            device = int(device_text)
        return cls(user, server, device=device, agent=agent)

    def to_non_ad(self) -> JID:
        """The same account without agent and device (whatsmeow's ToNonAD)."""
        return JID(self.user, self.server, integrator=self.integrator)


AttrValue = str | JID | int | bool
Content = None | bytes | list["Node"]


@dataclass
class Node:
    tag: str
    attrs: dict[str, AttrValue] = field(default_factory=dict)
    content: Content = None

    def children(self) -> list[Node]:
        """The child nodes ([] when the content is bytes or empty)."""
        return self.content if isinstance(self.content, list) else []

    def child(self, *tags: str) -> Node | None:
        """The first child with tag `tags[0]`, then its first child with `tags[1]`, and so on."""
        node: Node | None = self
        for tag in tags:
            assert node is not None
            node = next((c for c in node.children() if c.tag == tag), None)
            if node is None:
                return None
        return node

    def children_by_tag(self, tag: str) -> list[Node]:
        return [c for c in self.children() if c.tag == tag]


# ---------------------------------------------------------------------------------------------
# Encoding


def _is_nibble(value: str) -> bool:
    return len(value) <= t.PACKED_MAX and all(c in "0123456789-." for c in value)


def _is_hex(value: str) -> bool:
    return len(value) <= t.PACKED_MAX and all(c in "0123456789ABCDEF" for c in value)


_NIBBLE_CODE = {**{str(i): i for i in range(10)}, "-": 10, ".": 11}
_HEX_CODE = {c: i for i, c in enumerate("0123456789ABCDEF")}
_NIBBLE_CHAR = "0123456789-."
_HEX_CHAR = "0123456789ABCDEF"


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray([0])  # flags byte: 0 = not compressed

    def byte_length(self, length: int) -> None:
        if length < 256:
            self.out += bytes([t.BINARY_8, length])
        elif length < 1 << 20:
            self.out += bytes([t.BINARY_20]) + (length & 0xFFFFF).to_bytes(3, "big")
        elif length < 2**31 - 1:
            self.out += bytes([t.BINARY_32]) + length.to_bytes(4, "big")
        else:
            raise ValueError(f"length is too large: {length}")

    def list_start(self, size: int) -> None:
        if size == 0:
            self.out.append(t.LIST_EMPTY)
        elif size < 256:
            self.out += bytes([t.LIST_8, size])
        else:
            self.out += bytes([t.LIST_16]) + size.to_bytes(2, "big")

    def packed(self, value: str, kind: int) -> None:
        codes = _NIBBLE_CODE if kind == t.NIBBLE_8 else _HEX_CODE
        half, odd = divmod(len(value), 2)
        self.out += bytes([kind, (half + odd) | (0x80 if odd else 0)])
        for i in range(half):
            self.out.append(codes[value[2 * i]] << 4 | codes[value[2 * i + 1]])
        if odd:
            self.out.append(codes[value[-1]] << 4 | 15)

    def string(self, value: str) -> None:
        if value in t.SINGLE_BYTE_INDEX:
            self.out.append(t.SINGLE_BYTE_INDEX[value])
        elif value in t.DOUBLE_BYTE_INDEX:
            dictionary, index = t.DOUBLE_BYTE_INDEX[value]
            self.out += bytes([t.DICTIONARY_0 + dictionary, index])
        elif _is_nibble(value):
            self.packed(value, t.NIBBLE_8)
        elif _is_hex(value):
            self.packed(value, t.HEX_8)
        else:
            raw = value.encode("utf-8", "surrogateescape")
            self.byte_length(len(raw))
            self.out += raw

    def jid(self, jid: JID) -> None:
        if (jid.server in (USER_SERVER, LID_SERVER) and jid.device > 0) or jid.server in (
            HOSTED_SERVER,
            HOSTED_LID_SERVER,
        ):
            # whatsmeow writes the server's domain type here (so a RawAgent is dropped).
            self.out += bytes([t.AD_JID, _DOMAIN_OF_SERVER[jid.server], jid.device & 0xFF])
            self.string(jid.user)
        elif jid.server == MESSENGER_SERVER:
            self.out.append(t.FB_JID)
            self.string(jid.user)
            self.out += jid.device.to_bytes(2, "big")
            self.string(jid.server)
        elif jid.server == INTEROP_SERVER:
            self.out.append(t.INTEROP_JID)
            self.string(jid.user)
            self.out += jid.device.to_bytes(2, "big") + jid.integrator.to_bytes(2, "big")
            self.string(jid.server)
        else:
            self.out.append(t.JID_PAIR)
            if jid.user:
                self.string(jid.user)
            else:
                self.out.append(t.LIST_EMPTY)
            self.string(jid.server)

    def value(self, value: AttrValue) -> None:
        if isinstance(value, JID):
            self.jid(value)
        elif isinstance(value, bool):
            self.string("true" if value else "false")
        elif isinstance(value, int):
            self.string(str(value))
        elif isinstance(value, str):
            self.string(value)
        else:
            raise TypeError(f"unsupported attribute type: {type(value).__name__}")

    def node(self, node: Node) -> None:
        if node.tag == "0":
            self.out += bytes([t.LIST_8, t.LIST_EMPTY])
            return
        attrs = [(k, v) for k, v in node.attrs.items() if v is not None and v != ""]
        has_content = node.content is not None
        self.list_start(2 * len(attrs) + 1 + int(has_content))
        self.string(node.tag)
        for key, value in attrs:
            self.string(key)
            self.value(value)
        content = node.content
        if isinstance(content, bytes | bytearray | memoryview):
            raw = bytes(content)
            self.byte_length(len(raw))
            self.out += raw
        elif isinstance(content, list):
            self.list_start(len(content))
            for child in content:
                self.node(child)
        elif content is not None:
            raise TypeError(f"unsupported content type: {type(content).__name__}")


def encode(node: Node) -> bytes:
    writer = _Writer()
    writer.node(node)
    return bytes(writer.out)


# ---------------------------------------------------------------------------------------------
# Decoding


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"unexpected end of data at {self.pos} (wanted {n} bytes)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int_n(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def int20(self) -> int:
        raw = self.take(3)
        return (raw[0] & 0x0F) << 16 | raw[1] << 8 | raw[2]

    def list_size(self, tag: int) -> int:
        if tag == t.LIST_EMPTY:
            return 0
        if tag == t.LIST_8:
            return self.int_n(1)
        if tag == t.LIST_16:
            return self.int_n(2)
        raise DecodeError(f"list size with unknown tag {tag} at {self.pos}")

    def packed(self, kind: int) -> str:
        start = self.byte()
        chars = _NIBBLE_CHAR if kind == t.NIBBLE_8 else _HEX_CHAR
        out = []
        for byte in self.take(start & 0x7F):
            for code in (byte >> 4, byte & 0x0F):
                if code < len(chars):
                    out.append(chars[code])
                elif code == 15:
                    out.append("\x00")
                else:
                    raise DecodeError(f"invalid packed nibble {code}")
        text = "".join(out)
        return text[:-1] if start & 0x80 else text

    def string(self) -> str:
        value = self.read(as_string=True)
        if not isinstance(value, str):
            raise DecodeError(f"expected a string at {self.pos}, got {type(value).__name__}")
        return value

    def read(self, *, as_string: bool) -> str | bytes | JID | list[Node] | None:
        tag = self.byte()
        if tag == t.LIST_EMPTY:
            return None
        if tag in (t.LIST_8, t.LIST_16):
            return [self.node() for _ in range(self.list_size(tag))]
        if tag in (t.BINARY_8, t.BINARY_20, t.BINARY_32):
            if tag == t.BINARY_8:
                size = self.int_n(1)
            elif tag == t.BINARY_20:
                size = self.int20()
            else:
                size = self.int_n(4)
            raw = self.take(size)
            return raw.decode("utf-8", "surrogateescape") if as_string else raw
        if t.DICTIONARY_0 <= tag <= t.DICTIONARY_3:
            index = self.byte()
            dictionary = t.DOUBLE_BYTE_TOKENS[tag - t.DICTIONARY_0]
            if index >= len(dictionary):
                raise DecodeError(f"double-byte token {tag - t.DICTIONARY_0}/{index} unknown")
            return dictionary[index]
        if tag == t.JID_PAIR:
            user = self.read(as_string=True)
            server = self.read(as_string=True)
            if not isinstance(server, str) or not isinstance(user, str | None):
                raise DecodeError("invalid JID pair")
            return JID(user or "", server)
        if tag == t.AD_JID:
            domain, device = self.byte(), self.byte()
            user = self.string()
            if domain in _SERVER_OF_DOMAIN:
                return JID(user, _SERVER_OF_DOMAIN[domain], device=device)
            return JID(user, USER_SERVER, device=device, agent=domain)
        if tag == t.FB_JID:
            user = self.string()
            device = self.int_n(2)
            server = self.string()
            if server != MESSENGER_SERVER:
                raise DecodeError(f"invalid FB JID server {server!r}")
            return JID(user, server, device=device)
        if tag == t.INTEROP_JID:
            user = self.string()
            device, integrator = self.int_n(2), self.int_n(2)
            server = self.string()
            if server != INTEROP_SERVER:
                raise DecodeError(f"invalid interop JID server {server!r}")
            return JID(user, server, device=device, integrator=integrator)
        if tag in (t.NIBBLE_8, t.HEX_8):
            return self.packed(tag)
        if 1 <= tag < len(t.SINGLE_BYTE_TOKENS):
            return t.SINGLE_BYTE_TOKENS[tag]
        raise DecodeError(f"invalid token {tag} at {self.pos}")

    def node(self) -> Node:
        size = self.list_size(self.byte())
        tag = self.read(as_string=True)
        if size == 0 or not isinstance(tag, str) or not tag:
            raise DecodeError(f"invalid node at {self.pos}")
        attrs: dict[str, AttrValue] = {}
        for _ in range((size - 1) >> 1):
            key = self.read(as_string=True)
            if not isinstance(key, str):
                raise DecodeError(f"non-string attribute key at {self.pos}")
            value = self.read(as_string=True)
            if isinstance(value, str | JID):
                attrs[key] = value
            elif value is not None:
                raise DecodeError(f"unsupported value for attribute {key!r}")
        if size % 2 == 1:
            return Node(tag, attrs)
        content = self.read(as_string=False)
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        elif isinstance(content, JID):
            content = str(content).encode()
        return Node(tag, attrs, content)


def decode(data: bytes) -> Node:
    if not data:
        raise DecodeError("empty frame")
    flags, body = data[0], bytes(data[1:])
    if flags & 2:
        body = zlib.decompress(body)
    reader = _Reader(body)
    node = reader.node()
    if reader.pos != len(body):
        raise DecodeError(f"{len(body) - reader.pos} leftover bytes after the node")
    return node
