from django.urls import path

from django_handler.views import voice_callback

urlpatterns = [path("voice/callback", voice_callback)]
