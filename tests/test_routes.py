from paytime_app import routes
from paytime_app.cookies import safe_next_path
from paytime_app.models.users import Role


def hrefs(role):
    return [link.href for link in routes.navigation_for(role)]


def test_navigation_anonymous_sees_no_private_pages():
    assert hrefs(None) == []


def test_navigation_customer_sees_account_but_no_staff_pages():
    assert routes.ACCOUNT in hrefs(Role.CUSTOMER)
    assert routes.ADMIN_USERS not in hrefs(Role.CUSTOMER)
    assert routes.ADMIN_USERS not in hrefs(Role.SELLER)
    assert routes.ADMIN_USERS not in hrefs(Role.MANAGER)


def test_navigation_staff_see_admin_pages():
    for role in (Role.VIEWER, Role.ADMIN, Role.SUPER_ADMIN):
        assert routes.ADMIN_USERS in hrefs(role)
        assert routes.ADMIN_AUDIT in hrefs(role)


def test_safe_next_path_refuses_other_sites():
    assert safe_next_path("/account") == "/account"
    for hostile in ("//evil.example", "https://evil.example", "/\\evil.example", "", None, "/x\r\nSet-Cookie: a=b"):
        assert safe_next_path(hostile) == "/"
