"""What the dashboard (``app.py``) uses, kept apart from the library it shows and free of streamlit:

* :mod:`.live`: a four-circles (or toy) run trained live, its pictures and its opening frame;
* :mod:`.live_recovery`: stepping back to the last good state when a tick breaks down;
* :mod:`.room` and :mod:`.room_process`: one run for a whole class, trained in a process of its own;
* :mod:`.gallery`: the image runs of the Samples and Compare tabs;
* :mod:`.url_query`: settings to and from the page's URL.
"""
