"""Email HTML made safe to show inside the ticket page (nh3, the Rust ``ammonia`` sanitiser).

What survives: text formatting, lists, tables, quotes and links. What never does:

- scripts, styles, frames, forms, objects, SVG and MathML (removed with their content);
- event handlers (``on*``), ``id``/``name``/``class`` (no DOM clobbering, no borrowing the page's
  own classes), and every ``style`` property that could fetch or position something (only
  colours, weight, slant, decoration and alignment are kept, parsed by ammonia);
- URLs other than ``http``, ``https``, ``mailto`` and ``tel`` (so no ``javascript:``, ``data:``,
  ``vbscript:``), and relative URLs (they would point into Estafeta itself);
- remote resources: images are removed unless the reader asks for them (``load_images``),
  and then only ``https`` ones, fetched without a referrer. Inline ``cid:`` images are not
  shown (the attachments are listed under the message instead).

Links get ``rel="noopener noreferrer nofollow"`` and open in a new tab.
"""

from __future__ import annotations

from dataclasses import dataclass

import nh3
from django.utils.html import escape, linebreaks
from django.utils.safestring import SafeString, mark_safe

# Text structure only; nothing that loads, runs or submits.
TAGS = frozenset({
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite", "code",
    "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "font", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s",
    "samp", "small", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var", "wbr",
})
# Removed together with everything inside them.
DROPPED_WITH_CONTENT = frozenset({
    "script", "style", "title", "head", "iframe", "frame", "frameset", "object", "embed",
    "applet", "noscript", "noembed", "svg", "math", "template", "form", "textarea", "select",
    "button", "audio", "video", "canvas", "xmp", "plaintext", "noframes",
})
ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href"},
    "td": {"colspan", "rowspan", "valign", "width"},
    "th": {"colspan", "rowspan", "valign", "width"},
    "table": {"width", "cellpadding", "cellspacing", "border"},
    "font": {"color"},
    "ol": {"start", "type"},
    "img": {"src", "alt", "width", "height"},
}
# No property here takes a URL or moves the element out of the message.
STYLE_PROPERTIES = frozenset({
    "color", "background-color", "font-weight", "font-style", "text-decoration",
    "text-align", "vertical-align",
})
LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
LINK_REL = "noopener noreferrer nofollow"


@dataclass(frozen=True)
class Sanitized:
    """The safe HTML and how many images were held back (for a "show images" link)."""

    html: SafeString
    blocked_images: int


def _clean(html: str, *, images: bool) -> str:
    tags = set(TAGS) | ({"img"} if images else set())
    dropped = set(DROPPED_WITH_CONTENT)
    return nh3.clean(
        html, tags=tags, clean_content_tags=dropped, attributes=ATTRIBUTES,
        link_rel=LINK_REL, url_schemes=set(LINK_SCHEMES),
        url_relative="deny", strip_comments=True,
        filter_style_properties=set(STYLE_PROPERTIES),
        attribute_filter=_image_filter,
        set_tag_attribute_values={"a": {"target": "_blank"},
                                  "img": {"referrerpolicy": "no-referrer", "loading": "lazy"}},
    )


def _image_filter(tag: str, attribute: str, value: str) -> str | None:
    # Only https images, and only when the reader asked for them (img is not allowed otherwise).
    if tag == "img" and attribute == "src" and not value.strip().lower().startswith("https://"):
        return None
    return value


def _count_images(html: str) -> int:
    only = nh3.clean(html, tags={"img"}, clean_content_tags=set(DROPPED_WITH_CONTENT),
                     attributes={"img": {"src"}}, url_schemes={"https"}, url_relative="deny",
                     link_rel=None, attribute_filter=_image_filter)
    return only.count("<img src=")


def sanitize_html(html: str, *, load_images: bool = False) -> Sanitized:
    """``html`` (an email body as received) as HTML safe to put into a page.

    Remote images are left out unless ``load_images``; ``blocked_images`` counts the https
    images that were held back, so the page can offer to show them."""
    html = html or ""
    if not html.strip():
        return Sanitized(mark_safe(""), 0)
    cleaned = _clean(html, images=load_images)
    blocked = 0 if load_images else _count_images(html)
    return Sanitized(mark_safe(cleaned), blocked)  # noqa: S308 - nh3 output is safe HTML


def text_as_html(text: str) -> SafeString:
    """A plain-text body as paragraphs, every character escaped."""
    return mark_safe(linebreaks(escape(text or "")))  # noqa: S308 - escaped first


__all__ = ["Sanitized", "sanitize_html", "text_as_html"]
