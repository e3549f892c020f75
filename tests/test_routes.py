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


def staff_hrefs(role):
    return [link.href for link in routes.staff_navigation_for(role)]


def test_navigation_staff_see_admin_pages_in_their_own_menu():
    for role in (Role.VIEWER, Role.ADMIN, Role.SUPER_ADMIN):
        assert routes.ADMIN_USERS in staff_hrefs(role)
        assert routes.ADMIN_AUDIT in staff_hrefs(role)
        assert routes.ADMIN_PAYMENTS in staff_hrefs(role)
        assert not set(staff_hrefs(role)) & set(hrefs(role))
    for role in (None, Role.CUSTOMER, Role.SELLER, Role.MANAGER):
        assert staff_hrefs(role) == []


def test_safe_next_path_refuses_other_sites():
    assert safe_next_path("/account") == "/account"
    for hostile in ("//evil.example", "https://evil.example", "/\\evil.example", "", None, "/x\r\nSet-Cookie: a=b"):
        assert safe_next_path(hostile) == "/"
