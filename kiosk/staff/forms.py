"""Staff forms (Flask-WTF: each carries its CSRF token; kiosk/staff/guard.py checks it too)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from kiosk.staff.users import ADMIN, OFFICIAL
from motcua.statuses import STATUSES


class LoginForm(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class StatusForm(FlaskForm):
    code = HiddenField(validators=[DataRequired(), Length(max=100)])
    status = SelectField(_l("Trạng thái mới"), choices=list(STATUSES),
                         validators=[DataRequired()])


class PhoneForm(FlaskForm):
    code = HiddenField(validators=[DataRequired(), Length(max=100)])
    phone = StringField(_l("Số điện thoại"), validators=[DataRequired(), Length(max=32)])


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token, plus the dossier code where needed."""
    code = HiddenField(validators=[Length(max=100)])


class UserAddForm(FlaskForm):
    username = StringField(_l("Tên đăng nhập"), validators=[DataRequired(), Length(max=64)])
    display_name = StringField(_l("Họ và tên"), validators=[Length(max=200)])
    role = SelectField(_l("Vai trò"), choices=[OFFICIAL, ADMIN])
    password = PasswordField(_l("Mật khẩu"), validators=[DataRequired(), Length(max=1024)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Mật khẩu hiện tại"), validators=[DataRequired(), Length(max=1024)])
    new = PasswordField(_l("Mật khẩu mới"), validators=[DataRequired(), Length(max=1024)])
    repeat = PasswordField(_l("Nhập lại mật khẩu mới"), validators=[DataRequired(), Length(max=1024)])


class LanguageForm(FlaskForm):
    lang = HiddenField(validators=[DataRequired()])
