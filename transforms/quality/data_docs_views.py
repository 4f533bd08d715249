"""Data Docs views that render with our page templates before Great Expectations' own.

GX looks its templates up in its package first, so a template of the same name in its
"custom views" folder never replaces one. These views put ``data_docs/views`` (GX's page,
head and navbar templates with every CDN link pointed at the vendored copies in
``static/vendor/``, the logo at the site's own image, no newsletter footer) in front. The
Data Docs site names them in its configuration (``validation.gx_context``); GX imports this
module only when it renders, so nothing else pays for importing GX here.
"""

from __future__ import annotations

from importlib import resources

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import ChoiceLoader, FileSystemLoader

VIEWS = resources.files("transforms.quality").joinpath("data_docs", "views")


class LocalAssetsPageView(DefaultJinjaPageView):
    """Validation result and expectation suite pages."""

    def __init__(
        self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.loader = ChoiceLoader([FileSystemLoader(str(VIEWS)), self.env.loader])


class LocalAssetsIndexPageView(DefaultJinjaIndexPageView):
    """The site's index page."""

    def __init__(
        self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.loader = ChoiceLoader([FileSystemLoader(str(VIEWS)), self.env.loader])
